#pragma once
// A dense column-major matrix of doubles: the one in-memory container of popcode's numerical code.
//
// Convention for population data: a rank's block of a recording is a Matrix with one row per local
// neuron and one column per sample (presentation, stimulus or time point), so each sample's population
// vector restricted to the local neurons is one contiguous column. This is exactly the memory layout of
// an HDF5 row-major (samples x neurons) hyperslab, and the local row block of a PETSc MATMPIDENSE matrix
// of shape neurons x samples.
#include <sys/mman.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <new>
#include <span>
#include <vector>

namespace popcode {

// The allocator of Matrix storage. With POPCODE_HUGE_PAGES=1 in the environment (read once per process),
// blocks of 8 MiB and more are 2 MiB-aligned and marked MADV_HUGEPAGE, so that with transparent huge pages
// in "madvise" mode (the Debian default) the first touch of a large matrix takes one page fault per 2 MiB
// instead of one per 4 KiB. It is off by default because of what it does to memory. popcode's process has
// glibc's mmap switched off (libsuperlu_dist, loaded with PETSc, calls mallopt(M_MMAP_MAX, 0)), so every
// block comes from the heap and freed blocks stay there; with huge-page regions in that heap the demo job's
// peak on one of its two ranks measured 1,627 MiB in spectrum and 2,158 in decode-category against 852 and
// 1,350 without, in two runs of two (the other rank: 1,072 and 1,628). What it gains, measured on this
// project's 2-core VM: the rf stage (10,000 neurons x 2,800 images) at 2 ranks made about 590,000 faults
// and spent 9.1-9.6 s without, 170,000 and 7.9-8.1 s with (8.4-8.6 against 7.8-8.3 s on another day), and
// preprocessing 5.2-5.9 s against 4.2-4.4 s at 1 rank; the demo job's stages are as fast either way. An
// mmap per block measured more memory still, and MADV_NOHUGEPAGE on release changed nothing. Where THP is
// "never" the advice is ignored. Smaller blocks always use the ordinary heap.
inline bool huge_pages_enabled() {
  static const bool enabled = [] {
    const char* v = std::getenv("POPCODE_HUGE_PAGES");
    return v != nullptr && v[0] == '1' && v[1] == '\0';
  }();
  return enabled;
}

template <typename T>
struct LargePageAllocator {
  using value_type = T;
  static constexpr std::size_t kPage = std::size_t{2} << 20;
  static constexpr std::size_t kLarge = std::size_t{8} << 20;
  LargePageAllocator() = default;
  template <typename U>
  LargePageAllocator(const LargePageAllocator<U>&) {}  // NOLINT(google-explicit-constructor): allocator rebinding

  T* allocate(std::size_t n) {
    const std::size_t bytes = n * sizeof(T);
    if (bytes < kLarge || !huge_pages_enabled()) return std::allocator<T>().allocate(n);
    const std::size_t rounded = (bytes + kPage - 1) / kPage * kPage;
    void* p = std::aligned_alloc(kPage, rounded);
    if (!p) throw std::bad_alloc();
    madvise(p, rounded, MADV_HUGEPAGE);  // advice only: failure (e.g. no THP) leaves ordinary pages
    return static_cast<T*>(p);
  }
  void deallocate(T* p, std::size_t n) {
    if (n * sizeof(T) < kLarge || !huge_pages_enabled()) {
      std::allocator<T>().deallocate(p, n);
    } else {
      std::free(p);
    }
  }
  template <typename U>
  bool operator==(const LargePageAllocator<U>&) const { return true; }
};

class Matrix {
 public:
  Matrix() = default;
  Matrix(std::int64_t rows, std::int64_t cols, double fill = 0.0)
      : rows_(rows), cols_(cols), data_(static_cast<std::size_t>(rows * cols), fill) {}

  std::int64_t rows() const { return rows_; }
  std::int64_t cols() const { return cols_; }
  std::int64_t size() const { return rows_ * cols_; }
  bool empty() const { return rows_ == 0 || cols_ == 0; }

  double* data() { return data_.data(); }
  const double* data() const { return data_.data(); }
  double& operator()(std::int64_t i, std::int64_t j) { return data_[static_cast<std::size_t>(i + j * rows_)]; }
  double operator()(std::int64_t i, std::int64_t j) const { return data_[static_cast<std::size_t>(i + j * rows_)]; }

  std::span<double> col(std::int64_t j) { return {data_.data() + j * rows_, static_cast<std::size_t>(rows_)}; }
  std::span<const double> col(std::int64_t j) const {
    return {data_.data() + j * rows_, static_cast<std::size_t>(rows_)};
  }
  std::span<double> values() { return data_; }
  std::span<const double> values() const { return data_; }

  // Keeps only the listed rows and columns (each ascending), in place: no second copy of the matrix (the
  // storage keeps its capacity; releasing it would copy).
  void keep(const std::vector<std::int64_t>& rows, const std::vector<std::int64_t>& cols) {
    const auto r = static_cast<std::int64_t>(rows.size());
    std::size_t dst = 0;
    for (std::int64_t j : cols)  // destinations never overtake sources: both orders ascend
      for (std::int64_t i : rows) data_[dst++] = data_[static_cast<std::size_t>(i + j * rows_)];
    rows_ = r;
    cols_ = static_cast<std::int64_t>(cols.size());
    data_.resize(dst);
  }

  // Column c becomes the former column order[c], for the order.size() <= cols() distinct indices given;
  // the other columns are dropped. In place, with one column of scratch (the storage keeps its capacity).
  void select_columns(const std::vector<std::int64_t>& order) {
    const auto m = static_cast<std::int64_t>(order.size());
    // A permutation of all columns whose first m entries are `order`: destination c takes source src[c].
    std::vector<std::int64_t> src(order);
    std::vector<char> used(static_cast<std::size_t>(cols_), 0);
    for (std::int64_t k : order) used[static_cast<std::size_t>(k)] = 1;
    for (std::int64_t k = 0; k < cols_; ++k)
      if (!used[static_cast<std::size_t>(k)]) src.push_back(k);
    std::vector<char> done(static_cast<std::size_t>(cols_), 0);
    std::vector<double> scratch(static_cast<std::size_t>(rows_));
    const auto copy_col = [&](std::int64_t to, const double* from) {
      std::copy(from, from + rows_, data_.data() + to * rows_);
    };
    for (std::int64_t start = 0; start < cols_; ++start) {
      if (done[static_cast<std::size_t>(start)] || src[static_cast<std::size_t>(start)] == start) continue;
      std::copy(data_.data() + start * rows_, data_.data() + (start + 1) * rows_, scratch.begin());
      std::int64_t c = start;
      for (;;) {  // follow the cycle: c takes src[c], until the source is the saved start column
        done[static_cast<std::size_t>(c)] = 1;
        const std::int64_t from = src[static_cast<std::size_t>(c)];
        if (from == start) {
          copy_col(c, scratch.data());
          break;
        }
        copy_col(c, data_.data() + from * rows_);
        c = from;
      }
    }
    cols_ = m;
    data_.resize(static_cast<std::size_t>(rows_ * m));
  }

 private:
  std::int64_t rows_ = 0;
  std::int64_t cols_ = 0;
  std::vector<double, LargePageAllocator<double>> data_;
};

}  // namespace popcode
