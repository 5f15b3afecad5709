#include "solvers/dense.hpp"

#include <fmt/format.h>

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <climits>
#include <cmath>
#include <cstring>

#include "src/errors.hpp"

extern "C" {
// Fortran BLAS/LAPACK (gfortran calling convention, including the hidden lengths of character arguments).
void dgemm_(const char*, const char*, const int*, const int*, const int*, const double*, const double*, const int*,
            const double*, const int*, const double*, double*, const int*, std::size_t, std::size_t);
void sgemm_(const char*, const char*, const int*, const int*, const int*, const float*, const float*, const int*,
            const float*, const int*, const float*, float*, const int*, std::size_t, std::size_t);
void ssyrk_(const char*, const char*, const int*, const int*, const float*, const float*, const int*, const float*,
            float*, const int*, std::size_t, std::size_t);
void dsyrk_(const char*, const char*, const int*, const int*, const double*, const double*, const int*, const double*,
            double*, const int*, std::size_t, std::size_t);
void dsyevd_(const char*, const char*, const int*, double*, const int*, double*, double*, const int*, int*, const int*,
             int*, std::size_t, std::size_t);
void dgesdd_(const char*, const int*, const int*, double*, const int*, double*, double*, const int*, double*,
             const int*, double*, const int*, int*, int*, std::size_t);
void dsytrd_(const char*, const int*, double*, const int*, double*, double*, double*, double*, const int*, int*,
             std::size_t);
void dstemr_(const char*, const char*, const int*, double*, double*, const double*, const double*, const int*,
             const int*, int*, double*, double*, const int*, const int*, int*, int*, double*, const int*, int*,
             const int*, int*, std::size_t, std::size_t);
void dormtr_(const char*, const char*, const char*, const int*, const int*, const double*, const int*, const double*,
             double*, const int*, double*, const int*, int*, std::size_t, std::size_t, std::size_t);
void dgels_(const char*, const int*, const int*, const int*, double*, const int*, double*, const int*, double*,
            const int*, int*, std::size_t);
}

namespace popcode {
namespace {

int blas_int(std::int64_t v, const char* what) {
  if (v < 0 || v > INT_MAX) throw InternalError(fmt::format("{}: dimension {} outside the 32-bit BLAS range", what, v));
  return static_cast<int>(v);
}

const char* flag(Trans t) { return t == Trans::yes ? "T" : "N"; }

void lapack_check(int info, const char* routine) {
  if (info < 0) throw InternalError(fmt::format("{}: argument {} had an illegal value", routine, -info));
  if (info > 0) throw InternalError(fmt::format("{}: failed to converge (info = {})", routine, info));
}

}  // namespace

void gemm_raw(Trans ta, Trans tb, std::int64_t m, std::int64_t n, std::int64_t k, double alpha, const double* a,
              std::int64_t lda, const double* b, std::int64_t ldb, double beta, double* c, std::int64_t ldc) {
  if (m == 0 || n == 0) return;
  const int im = blas_int(m, "gemm"), in = blas_int(n, "gemm"), ik = blas_int(k, "gemm");
  const int ilda = std::max(1, blas_int(lda, "gemm")), ildb = std::max(1, blas_int(ldb, "gemm"));
  const int ildc = std::max(1, blas_int(ldc, "gemm"));
  if (k == 0) {
    // dgemm would scale C by beta; do it here so empty inner dimensions behave.
    for (std::int64_t j = 0; j < n; ++j)
      for (std::int64_t i = 0; i < m; ++i) c[i + j * ldc] = beta == 0.0 ? 0.0 : beta * c[i + j * ldc];
    return;
  }
  dgemm_(flag(ta), flag(tb), &im, &in, &ik, &alpha, a, &ilda, b, &ildb, &beta, c, &ildc, 1, 1);
}

void gemm_raw_f32(Trans ta, Trans tb, std::int64_t m, std::int64_t n, std::int64_t k, const float* a, std::int64_t lda,
                  const float* b, std::int64_t ldb, float* c, std::int64_t ldc) {
  if (m == 0 || n == 0) return;
  const int im = blas_int(m, "sgemm"), in = blas_int(n, "sgemm"), ik = blas_int(k, "sgemm");
  const int ilda = std::max(1, blas_int(lda, "sgemm")), ildb = std::max(1, blas_int(ldb, "sgemm"));
  const int ildc = std::max(1, blas_int(ldc, "sgemm"));
  if (k == 0) {
    for (std::int64_t j = 0; j < n; ++j) std::fill(c + j * ldc, c + j * ldc + m, 0.0f);
    return;
  }
  const float one = 1.0f, zero = 0.0f;
  sgemm_(flag(ta), flag(tb), &im, &in, &ik, &one, a, &ilda, b, &ildb, &zero, c, &ildc, 1, 1);
}

void syrk_raw_f32(std::int64_t n, std::int64_t k, const float* a, std::int64_t lda, float* c, std::int64_t ldc) {
  if (n == 0) return;
  const int in = blas_int(n, "ssyrk"), ik = blas_int(k, "ssyrk");
  const int ilda = std::max(1, blas_int(lda, "ssyrk")), ildc = std::max(1, blas_int(ldc, "ssyrk"));
  const float one = 1.0f, zero = 0.0f;
  ssyrk_("U", "T", &in, &ik, &one, a, &ilda, &zero, c, &ildc, 1, 1);  // k == 0: beta = 0 zeroes the triangle
}

void gemm(Trans ta, Trans tb, double alpha, const Matrix& a, const Matrix& b, double beta, Matrix& c) {
  const std::int64_t m = ta == Trans::no ? a.rows() : a.cols();
  const std::int64_t k = ta == Trans::no ? a.cols() : a.rows();
  const std::int64_t kb = tb == Trans::no ? b.rows() : b.cols();
  const std::int64_t n = tb == Trans::no ? b.cols() : b.rows();
  if (k != kb || c.rows() != m || c.cols() != n) {
    throw InternalError(fmt::format("gemm: shapes {}x{}{} * {}x{}{} -> {}x{} do not match", a.rows(), a.cols(),
                                    ta == Trans::yes ? "^T" : "", b.rows(), b.cols(), tb == Trans::yes ? "^T" : "",
                                    c.rows(), c.cols()));
  }
  gemm_raw(ta, tb, m, n, k, alpha, a.data(), a.rows(), b.data(), b.rows(), beta, c.data(), c.rows());
}

namespace {

// Blocks of 8 vectors against 4 points (or 1), adding rows [0, n) to the running sums in `out`: the 8 sums of
// a point are two 4-lane vectors (GCC vector extensions; one AVX2 register each), all named, so that -O2
// keeps them in registers.
typedef double Lanes4 __attribute__((vector_size(32)));

inline __attribute__((always_inline)) void load_lanes(Lanes4& lo, Lanes4& hi, const double* p) {
  std::memcpy(&lo, p, sizeof lo);
  std::memcpy(&hi, p + 4, sizeof hi);
}

inline __attribute__((always_inline)) void store_lanes(double* p, const Lanes4& lo, const Lanes4& hi) {
  std::memcpy(p, &lo, sizeof lo);
  std::memcpy(p + 4, &hi, sizeof hi);
}

inline __attribute__((always_inline)) void products_block4(const double* x0, const double* x1, const double* x2,
                                                           const double* x3, std::int64_t n, const double* ct,
                                                           std::int64_t kp, double* out) {
  Lanes4 a0, b0, a1, b1, a2, b2, a3, b3;
  load_lanes(a0, b0, out);
  load_lanes(a1, b1, out + kp);
  load_lanes(a2, b2, out + 2 * kp);
  load_lanes(a3, b3, out + 3 * kp);
  for (std::int64_t r = 0; r < n; ++r) {
    Lanes4 lo, hi;
    load_lanes(lo, hi, ct + r * kp);
    a0 += x0[r] * lo;
    b0 += x0[r] * hi;
    a1 += x1[r] * lo;
    b1 += x1[r] * hi;
    a2 += x2[r] * lo;
    b2 += x2[r] * hi;
    a3 += x3[r] * lo;
    b3 += x3[r] * hi;
  }
  store_lanes(out, a0, b0);
  store_lanes(out + kp, a1, b1);
  store_lanes(out + 2 * kp, a2, b2);
  store_lanes(out + 3 * kp, a3, b3);
}

inline __attribute__((always_inline)) void products_block1(const double* x, std::int64_t n, const double* ct,
                                                           std::int64_t kp, double* out) {
  Lanes4 a, b;
  load_lanes(a, b, out);
  for (std::int64_t r = 0; r < n; ++r) {
    Lanes4 lo, hi;
    load_lanes(lo, hi, ct + r * kp);
    a += x[r] * lo;
    b += x[r] * hi;
  }
  store_lanes(out, a, b);
}

}  // namespace

// Rows per block: the block's slice of kp vectors fills three quarters of this core's L2 (sysconf; 1 MiB
// when it does not say).
std::int64_t interleaved_products_row_block(std::int64_t kp) {
  static const std::int64_t budget = [] {
    const long l2 = sysconf(_SC_LEVEL2_CACHE_SIZE);
    return (l2 > 0 ? static_cast<std::int64_t>(l2) : std::int64_t{1} << 20) * 3 / 4;
  }();
  return std::max<std::int64_t>(32, budget / (8 * std::max<std::int64_t>(kp, 1)));
}

__attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default"))) void interleaved_products(
    const double* x, std::int64_t n, std::int64_t ldx, std::int64_t w, const double* ct, std::int64_t kp, double* out,
    const std::int64_t* ids) {
  if (kp % 8 != 0) throw InternalError(fmt::format("interleaved_products: {} vectors, not a multiple of 8", kp));
  const auto col = [&](std::int64_t c) { return x + (ids != nullptr ? ids[c] : c) * ldx; };
  std::fill(out, out + w * kp, 0.0);
  // Rows in blocks whose slice of the vectors (rb x kp values) stays in L2 while every point passes over
  // it; otherwise each group of 4 points would stream all n x kp values again from memory, twice the points'
  // own traffic at kp = 8. Blocks sized for L1 instead (24 KiB) cut each point's column into short pieces
  // that the prefetcher follows badly: Lloyd on 10,000 x 5,600 at k = 8 took 0.64-0.66 s, against
  // 0.54 s with L2-sized blocks. The sums still run over r in order, so the block size does not change them.
  const std::int64_t rb = interleaved_products_row_block(kp);
  for (std::int64_t r0 = 0; r0 < n; r0 += rb) {
    const std::int64_t nr = std::min(rb, n - r0);
    for (std::int64_t jb = 0; jb < kp; jb += 8) {
      const double* v = ct + r0 * kp + jb;
      std::int64_t c = 0;
      for (; c + 4 <= w; c += 4)
        products_block4(col(c) + r0, col(c + 1) + r0, col(c + 2) + r0, col(c + 3) + r0, nr, v, kp, out + c * kp + jb);
      for (; c < w; ++c) products_block1(col(c) + r0, nr, v, kp, out + c * kp + jb);
    }
  }
}

void gram(const Matrix& a, Matrix& c) {
  const std::int64_t n = a.cols(), k = a.rows();
  if (c.rows() != n || c.cols() != n) c = Matrix(n, n);
  if (n == 0) return;
  if (k == 0) {
    std::fill(c.values().begin(), c.values().end(), 0.0);
    return;
  }
  const int in = blas_int(n, "syrk"), ik = blas_int(k, "syrk");
  const double one = 1.0, zero = 0.0;
  // C <- A^T A (upper triangle)
  dsyrk_("U", "T", &in, &ik, &one, a.data(), &ik, &zero, c.data(), &in, 1, 1);
  for (std::int64_t j = 0; j < n; ++j)
    for (std::int64_t i = j + 1; i < n; ++i) c(i, j) = c(j, i);
}

std::vector<double> symmetric_eigen(Matrix& a, std::int64_t count, Matrix* vectors) {
  const std::int64_t n = a.rows();
  if (a.cols() != n) throw InternalError("symmetric_eigen: matrix is not square");
  count = std::clamp<std::int64_t>(count, 0, n);
  if (n == 0 || count == 0) {
    if (vectors) *vectors = Matrix(n, 0);
    return {};
  }
  const int in = blas_int(n, "syev");
  const char* jobz = vectors ? "V" : "N";
  std::vector<double> w(static_cast<std::size_t>(n));
  int info = 0;
  if (count == n) {
    // All eigenpairs: divide and conquer, eigenvectors overwrite `a` (ascending order).
    int lwork = -1, liwork = -1, iwork_query = 0;
    double work_query = 0;
    dsyevd_(jobz, "U", &in, a.data(), &in, w.data(), &work_query, &lwork, &iwork_query, &liwork, &info, 1, 1);
    lapack_check(info, "dsyevd(workspace query)");
    lwork = static_cast<int>(work_query);
    liwork = iwork_query;
    std::vector<double> work(static_cast<std::size_t>(lwork));
    std::vector<int> iwork(static_cast<std::size_t>(liwork));
    dsyevd_(jobz, "U", &in, a.data(), &in, w.data(), work.data(), &lwork, iwork.data(), &liwork, &info, 1, 1);
    lapack_check(info, "dsyevd");
    std::reverse(w.begin(), w.end());
    if (vectors) {
      *vectors = Matrix(n, n);
      for (std::int64_t j = 0; j < n; ++j) std::copy_n(a.col(n - 1 - j).data(), n, vectors->col(j).data());
    }
    return w;
  }
  // The `count` largest (indices n-count+1 .. n, 1-based, ascending). dsyevr would fall back to bisection and
  // inverse iteration for a partial range, so: tridiagonal reduction (dsytrd), MRRR on the index range
  // (dstemr), and back-transformation of only those vectors (dormtr).
  std::vector<double> d(static_cast<std::size_t>(n)), e(static_cast<std::size_t>(n)), tau(static_cast<std::size_t>(n));
  int lwork = -1;
  double query = 0;
  dsytrd_("U", &in, a.data(), &in, d.data(), e.data(), tau.data(), &query, &lwork, &info, 1);  // A = Q T Q^T
  lapack_check(info, "dsytrd(workspace query)");
  lwork = static_cast<int>(query);
  std::vector<double> work(static_cast<std::size_t>(std::max(lwork, 1)));
  dsytrd_("U", &in, a.data(), &in, d.data(), e.data(), tau.data(), work.data(), &lwork, &info, 1);
  lapack_check(info, "dsytrd");
  const int il = static_cast<int>(n - count + 1), iu = in, nzc = static_cast<int>(count);
  const double vl = 0, vu = 0;
  int found = 0, tryrac = 1;
  Matrix z(vectors ? n : 1, vectors ? count : 1);
  const int ldz = vectors ? in : 1;
  std::vector<int> isuppz(static_cast<std::size_t>(2 * count));
  int liwork = -1, iquery = 0;
  lwork = -1;
  dstemr_(jobz, "I", &in, d.data(), e.data(), &vl, &vu, &il, &iu, &found, w.data(), z.data(), &ldz, &nzc, isuppz.data(),
          &tryrac, &query, &lwork, &iquery, &liwork, &info, 1, 1);
  lapack_check(info, "dstemr(workspace query)");
  lwork = static_cast<int>(query);
  liwork = iquery;
  work.assign(static_cast<std::size_t>(std::max(lwork, 1)), 0.0);
  std::vector<int> iwork(static_cast<std::size_t>(std::max(liwork, 1)));
  dstemr_(jobz, "I", &in, d.data(), e.data(), &vl, &vu, &il, &iu, &found, w.data(), z.data(), &ldz, &nzc, isuppz.data(),
          &tryrac, work.data(), &lwork, iwork.data(), &liwork, &info, 1, 1);
  lapack_check(info, "dstemr");
  if (found != count) throw InternalError(fmt::format("dstemr: found {} eigenvalues, expected {}", found, count));
  if (vectors) {
    const int m = nzc;
    lwork = -1;
    dormtr_("L", "U", "N", &in, &m, a.data(), &in, tau.data(), z.data(), &in, &query, &lwork, &info, 1, 1, 1);  // Z <- Q Z
    lapack_check(info, "dormtr(workspace query)");
    lwork = static_cast<int>(query);
    work.assign(static_cast<std::size_t>(std::max(lwork, 1)), 0.0);
    dormtr_("L", "U", "N", &in, &m, a.data(), &in, tau.data(), z.data(), &in, work.data(), &lwork, &info, 1, 1, 1);
    lapack_check(info, "dormtr");
  }
  std::vector<double> out(w.begin(), w.begin() + count);
  std::reverse(out.begin(), out.end());
  if (vectors) {
    *vectors = Matrix(n, count);
    for (std::int64_t j = 0; j < count; ++j) std::copy_n(z.col(count - 1 - j).data(), n, vectors->col(j).data());
  }
  return out;
}

RowMoments row_moments(const Matrix& m, std::int64_t first_col, std::int64_t cols) {
  const auto n = static_cast<std::size_t>(m.rows());
  RowMoments r{std::vector<double>(n, 0.0), std::vector<double>(n, 0.0)};
  for (std::int64_t j = first_col; j < first_col + cols; ++j) {
    const double* c = m.col(j).data();
    for (std::size_t i = 0; i < n; ++i) r.mean[i] += c[i];
  }
  for (double& v : r.mean) v /= static_cast<double>(cols);
  for (std::int64_t j = first_col; j < first_col + cols; ++j) {
    const double* c = m.col(j).data();
    for (std::size_t i = 0; i < n; ++i) r.ssd[i] += (c[i] - r.mean[i]) * (c[i] - r.mean[i]);
  }
  return r;
}

std::vector<double> least_squares(Matrix a, std::vector<double> b) {
  const int m = static_cast<int>(a.rows()), n = static_cast<int>(a.cols()), nrhs = 1;
  if (m < n || static_cast<int>(b.size()) != m)
    throw InternalError(fmt::format("least squares needs rows >= columns and one value per row, got {} x {} and {}", m, n,
                                    b.size()));
  int info = 0, lwork = -1;
  double work_query = 0;
  const int lda = std::max(1, m), ldb = std::max(1, m);
  dgels_("N", &m, &n, &nrhs, a.data(), &lda, b.data(), &ldb, &work_query, &lwork, &info, 1);
  lapack_check(info, "dgels(workspace query)");
  lwork = static_cast<int>(work_query);
  std::vector<double> work(static_cast<std::size_t>(std::max(1, lwork)));
  dgels_("N", &m, &n, &nrhs, a.data(), &lda, b.data(), &ldb, work.data(), &lwork, &info, 1);
  lapack_check(info, "dgels");
  b.resize(static_cast<std::size_t>(n));
  return b;
}

std::vector<double> left_singular_vectors(Matrix& a, Matrix& u) {
  Matrix vt;
  return thin_svd(a, u, vt);
}

std::vector<double> thin_svd(Matrix& a, Matrix& u, Matrix& vt) {
  const std::int64_t m = a.rows(), n = a.cols(), k = std::min(m, n);
  u = Matrix(m, k);
  vt = Matrix(k, n);
  if (k == 0) return {};
  const int im = blas_int(m, "gesdd"), in = blas_int(n, "gesdd");
  std::vector<double> s(static_cast<std::size_t>(k));
  std::vector<int> iwork(static_cast<std::size_t>(8 * k));
  int info = 0, lwork = -1;
  double work_query = 0;
  const int ldu = im, ldvt = static_cast<int>(k);
  dgesdd_("S", &im, &in, a.data(), &im, s.data(), u.data(), &ldu, vt.data(), &ldvt, &work_query, &lwork, iwork.data(),
          &info, 1);
  lapack_check(info, "dgesdd(workspace query)");
  lwork = static_cast<int>(work_query);
  std::vector<double> work(static_cast<std::size_t>(lwork));
  dgesdd_("S", &im, &in, a.data(), &im, s.data(), u.data(), &ldu, vt.data(), &ldvt, work.data(), &lwork, iwork.data(),
          &info, 1);
  lapack_check(info, "dgesdd");
  return s;
}

std::vector<double> canonical_signs(Matrix& v) {
  std::vector<double> flips(static_cast<std::size_t>(v.cols()), 1.0);
  for (std::int64_t j = 0; j < v.cols(); ++j) {
    auto c = v.col(j);
    if (c.empty()) continue;
    const auto it = std::max_element(c.begin(), c.end(), [](double x, double y) { return std::abs(x) < std::abs(y); });
    if (*it < 0) {
      flips[static_cast<std::size_t>(j)] = -1.0;
      for (double& x : c) x = -x;
    }
  }
  return flips;
}

double measure_dgemm_gflops(std::int64_t n, int repeats) {
  Matrix a(n, n), b(n, n), c(n, n);
  for (std::int64_t i = 0; i < a.size(); ++i) {
    a.data()[i] = std::sin(0.37 * static_cast<double>(i));
    b.data()[i] = std::cos(0.11 * static_cast<double>(i));
  }
  double best = 0;
  for (int r = 0; r < repeats; ++r) {
    const auto t0 = std::chrono::steady_clock::now();
    gemm(Trans::no, Trans::no, 1.0, a, b, 0.0, c);
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    best = std::max(best, 2.0 * static_cast<double>(n) * static_cast<double>(n) * static_cast<double>(n) / s / 1e9);
  }
  return best;
}

}  // namespace popcode
