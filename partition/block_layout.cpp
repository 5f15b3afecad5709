#include "partition/block_layout.hpp"

#include <stdexcept>
#include <string>

namespace popcode {

BlockLayout::BlockLayout(std::int64_t n, int parts) : n_(n), parts_(parts) {
  if (n < 0) throw std::invalid_argument("BlockLayout: negative size " + std::to_string(n));
  if (parts < 1) throw std::invalid_argument("BlockLayout: number of parts must be >= 1, got " + std::to_string(parts));
  base_ = n / parts;
  extra_ = n % parts;
}

std::int64_t BlockLayout::count(int part) const {
  if (part < 0 || part >= parts_) throw std::out_of_range("BlockLayout: part " + std::to_string(part) + " of " + std::to_string(parts_));
  return base_ + (part < extra_ ? 1 : 0);
}

std::int64_t BlockLayout::offset(int part) const {
  if (part < 0 || part > parts_) throw std::out_of_range("BlockLayout: part " + std::to_string(part) + " of " + std::to_string(parts_));
  return part * base_ + (part < extra_ ? part : extra_);
}

int BlockLayout::owner(std::int64_t i) const {
  if (i < 0 || i >= n_) throw std::out_of_range("BlockLayout: index " + std::to_string(i) + " outside [0, " + std::to_string(n_) + ")");
  // The first `extra_` parts hold base_ + 1 items each.
  const std::int64_t big = extra_ * (base_ + 1);
  if (i < big) return static_cast<int>(i / (base_ + 1));
  return static_cast<int>(extra_ + (i - big) / base_);
}

CountLayout::CountLayout(std::vector<std::int64_t> counts) : counts_(std::move(counts)) {
  if (counts_.empty()) throw std::invalid_argument("CountLayout: no parts");
  offsets_.assign(counts_.size() + 1, 0);
  for (std::size_t i = 0; i < counts_.size(); ++i) {
    if (counts_[i] < 0) throw std::invalid_argument("CountLayout: negative count");
    offsets_[i + 1] = offsets_[i] + counts_[i];
  }
}

}  // namespace popcode
