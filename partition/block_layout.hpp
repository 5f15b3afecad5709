#pragma once
// 1-D block layouts: how `n` items (neurons, stimuli, time points) are split into contiguous blocks over
// `parts` ranks. The first n % parts blocks hold one item more than the rest, so blocks differ in size by
// at most one; with more ranks than items the trailing blocks are empty. This is the same rule PETSc uses
// for PETSC_DECIDE, so a popcode neuron block is also the local row range of a PETSc matrix.
#include <cstdint>
#include <vector>

namespace popcode {

struct Range {
  std::int64_t begin = 0;
  std::int64_t end = 0;
  std::int64_t size() const { return end - begin; }
  bool empty() const { return end <= begin; }
  bool contains(std::int64_t i) const { return i >= begin && i < end; }
};

class BlockLayout {
 public:
  BlockLayout() = default;
  // Throws std::invalid_argument for n < 0 or parts < 1.
  BlockLayout(std::int64_t n, int parts);

  std::int64_t size() const { return n_; }
  int parts() const { return parts_; }
  std::int64_t count(int part) const;
  std::int64_t offset(int part) const;
  Range range(int part) const { return {offset(part), offset(part) + count(part)}; }
  // The part that owns global index i, 0 <= i < size(). Throws std::out_of_range otherwise.
  int owner(std::int64_t i) const;
  // Largest block size (the memory bound per rank).
  std::int64_t max_count() const { return count(0); }

  bool operator==(const BlockLayout& o) const { return n_ == o.n_ && parts_ == o.parts_; }

 private:
  std::int64_t n_ = 0;
  int parts_ = 1;
  std::int64_t base_ = 0;  // n / parts
  std::int64_t extra_ = 0; // n % parts
};

// Contiguous blocks of given sizes (e.g. the neurons each rank kept after preprocessing, which need not
// follow BlockLayout's rule). Same queries as BlockLayout.
class CountLayout {
 public:
  CountLayout() = default;
  // Throws std::invalid_argument for an empty list or a negative count.
  explicit CountLayout(std::vector<std::int64_t> counts);
  std::int64_t size() const { return offsets_.back(); }
  int parts() const { return static_cast<int>(counts_.size()); }
  std::int64_t count(int part) const { return counts_.at(static_cast<std::size_t>(part)); }
  std::int64_t offset(int part) const { return offsets_.at(static_cast<std::size_t>(part)); }
  Range range(int part) const { return {offset(part), offset(part) + count(part)}; }

 private:
  std::vector<std::int64_t> counts_{0};
  std::vector<std::int64_t> offsets_{0, 0};
};

}  // namespace popcode
