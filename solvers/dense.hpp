#pragma once
// Dense linear algebra on local (one-rank) matrices: thin checked wrappers over BLAS and LAPACK
// (OpenBLAS at run time). Each wrapper states the operation it performs; callers compose them so that
// solver code reads like the algorithm in docs/SCIENCE.md.
#include <cstdint>
#include <span>
#include <vector>

#include "solvers/matrix.hpp"

namespace popcode {

enum class Trans { no, yes };

// C <- alpha op(A) op(B) + beta C   (dgemm)
void gemm(Trans ta, Trans tb, double alpha, const Matrix& a, const Matrix& b, double beta, Matrix& c);

// Raw dgemm on column-major arrays (for sub-blocks): C[m x n] <- alpha op(A) op(B) + beta C.
void gemm_raw(Trans ta, Trans tb, std::int64_t m, std::int64_t n, std::int64_t k, double alpha, const double* a,
              std::int64_t lda, const double* b, std::int64_t ldb, double beta, double* c, std::int64_t ldc);

// Raw sgemm, single precision, for passes whose results are checked in double afterwards (the kNN graph's
// candidate pass): C[m x n] <- op(A) op(B).
void gemm_raw_f32(Trans ta, Trans tb, std::int64_t m, std::int64_t n, std::int64_t k, const float* a, std::int64_t lda,
                  const float* b, std::int64_t ldb, float* c, std::int64_t ldc);

// Raw ssyrk, single precision, the same use: the upper triangle (row <= column) of C[n x n] <- A^T A for A
// k x n; the strictly lower triangle is left as it was. Half the flops of gemm_raw_f32 on a diagonal block.
void syrk_raw_f32(std::int64_t n, std::int64_t k, const float* a, std::int64_t lda, float* c, std::int64_t ldc);

// Products of a few points with a few vectors, the shape of a k-means assignment: for points c < w and vectors
// j < kp, out[c * kp + j] = sum_{r < n} x[c * ldx + r] * ct[r * kp + j]. The vectors are interleaved (row r
// of all of them together) and kp is a multiple of 8. Each point is read once, straight from `x`: dgemm would
// first copy the points into its packed layout, which costs as much as the products themselves when kp is
// this small. The loops are compiled for x86-64-v4 (AVX-512), v3 (AVX2, FMA) and the baseline, and the best
// is chosen at run time; every version sums over r in the same order, but the v3/v4 ones fuse each multiply
// and add, so their last bits can differ from the baseline's (as OpenBLAS's own per-CPU kernels do).
// With `ids`, the points are the columns ids[0], ..., ids[w - 1] of x instead of the first w (for scattered
// points, read in place).
void interleaved_products(const double* x, std::int64_t n, std::int64_t ldx, std::int64_t w, const double* ct,
                          std::int64_t kp, double* out, const std::int64_t* ids = nullptr);
// The rows interleaved_products takes per block (the sums are the same whatever it is; exposed for tests).
std::int64_t interleaved_products_row_block(std::int64_t kp);

// C <- A^T A, full symmetric result (dsyrk on the upper triangle, then mirrored). A is k x n, C is n x n.
void gram(const Matrix& a, Matrix& c);

// Eigen-decomposition of the symmetric matrix `a` (destroyed). Returns the `count` largest eigenvalues in
// descending order and, when `vectors` is non-null, their unit eigenvectors as columns (n x count).
// count == n uses divide and conquer (dsyevd); fewer uses the tridiagonal reduction, MRRR on the index
// range (dstemr) and back-transformation of only the wanted vectors.
std::vector<double> symmetric_eigen(Matrix& a, std::int64_t count, Matrix* vectors);

// Per-row mean and sum of squared deviations from it, over columns [first_col, first_col + cols) of `m`
// (two passes, column by column: the matrix is column-major). Callers choose the divisor of the variance.
struct RowMoments {
  std::vector<double> mean, ssd;
};
RowMoments row_moments(const Matrix& m, std::int64_t first_col, std::int64_t cols);
inline RowMoments row_moments(const Matrix& m) { return row_moments(m, 0, m.cols()); }

// Least-squares solution of A x = b for a full-rank A with rows >= columns (dgels, Householder QR).
std::vector<double> least_squares(Matrix a, std::vector<double> b);

// Thin SVD of `a` (m x n, destroyed): returns the singular values in descending order and the first
// min(m, n) left singular vectors as columns of `u` (dgesdd).
std::vector<double> left_singular_vectors(Matrix& a, Matrix& u);
// Same, also returning the first min(m, n) right singular vectors as the rows of `vt` (min(m, n) x n):
// a = u diag(s) vt.
std::vector<double> thin_svd(Matrix& a, Matrix& u, Matrix& vt);

// Flips the sign of each column so that its entry of largest magnitude is positive (a canonical sign for
// eigen/singular vectors, which LAPACK leaves arbitrary). Returns the flips applied (+1/-1).
std::vector<double> canonical_signs(Matrix& v);

// Measured dgemm rate in GFLOP/s on this rank (n x n x n products, best of `repeats`): the "floor" rate.
double measure_dgemm_gflops(std::int64_t n = 1024, int repeats = 3);

}  // namespace popcode
