#pragma once
// A dense column-major matrix of doubles: the one in-memory container of popcode's numerical code.
//
// Convention for population data: a rank's block of a recording is a Matrix with one row per local
// neuron and one column per sample (presentation, stimulus or time point), so each sample's population
// vector restricted to the local neurons is one contiguous column. This is exactly the memory layout of
// an HDF5 row-major (samples x neurons) hyperslab, and the local row block of a PETSc MATMPIDENSE matrix
// of shape neurons x samples.
#include <cstdint>
#include <span>
#include <vector>

namespace popcode {

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

 private:
  std::int64_t rows_ = 0;
  std::int64_t cols_ = 0;
  std::vector<double> data_;
};

}  // namespace popcode
