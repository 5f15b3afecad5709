#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <numeric>
#include <utility>

#include "solvers/dense.hpp"
#include "src/errors.hpp"
#include "src/rng.hpp"

namespace popcode {
namespace {

Matrix random_matrix(std::int64_t r, std::int64_t c, std::uint64_t seed) {
  const CounterRng rng(seed);
  Matrix m(r, c);
  for (std::int64_t j = 0; j < c; ++j)
    for (std::int64_t i = 0; i < r; ++i) m(i, j) = rng.normal(Stream::image, static_cast<std::uint32_t>(i), static_cast<std::uint32_t>(j));
  return m;
}

// Q diag(d) Q^T with Q orthonormal (from the SVD of a random matrix): known eigenvalues.
Matrix with_eigenvalues(const std::vector<double>& d, Matrix* q_out) {
  const auto n = static_cast<std::int64_t>(d.size());
  Matrix r = random_matrix(n, n, 7), q;
  left_singular_vectors(r, q);
  Matrix qd = q;
  for (std::int64_t j = 0; j < n; ++j)
    for (double& v : qd.col(j)) v *= d[j];
  Matrix a(n, n);
  gemm(Trans::no, Trans::yes, 1.0, qd, q, 0.0, a);
  if (q_out) *q_out = q;
  return a;
}

TEST(Matrix, KeepsRowsAndColumnsInPlace) {
  Matrix m(4, 5);
  for (int j = 0; j < 5; ++j)
    for (int i = 0; i < 4; ++i) m(i, j) = 10 * i + j;
  m.keep({0, 2, 3}, {1, 4});
  ASSERT_EQ(m.rows(), 3);
  ASSERT_EQ(m.cols(), 2);
  const double expected[3][2] = {{1, 4}, {21, 24}, {31, 34}};
  for (int i = 0; i < 3; ++i)
    for (int j = 0; j < 2; ++j) EXPECT_EQ(m(i, j), expected[i][j]);
  m.keep({}, {0});
  EXPECT_EQ(m.size(), 0);
}

TEST(Dense, GemmAndGramAgreeWithLoops) {
  const Matrix a = random_matrix(5, 4, 1), b = random_matrix(5, 3, 2);
  Matrix c(4, 3);
  gemm(Trans::yes, Trans::no, 1.0, a, b, 0.0, c);
  Matrix g;
  gram(a, g);
  for (int i = 0; i < 4; ++i) {
    for (int j = 0; j < 3; ++j) {
      double s = 0;
      for (int k = 0; k < 5; ++k) s += a(k, i) * b(k, j);
      EXPECT_NEAR(c(i, j), s, 1e-12);
    }
    for (int j = 0; j < 4; ++j) {
      double s = 0;
      for (int k = 0; k < 5; ++k) s += a(k, i) * a(k, j);
      EXPECT_NEAR(g(i, j), s, 1e-12);
    }
  }
  Matrix wrong(2, 2);
  EXPECT_THROW(gemm(Trans::no, Trans::no, 1.0, a, b, 0.0, wrong), std::exception);
}

// The k-means products kernel against a plain sum in long double: row counts around and across its row
// blocks (sized from the L2 cache, interleaved_products_row_block), point counts around its groups of 4, a
// leading dimension above n, and 16 vectors (two blocks of 8).
TEST(Dense, InterleavedProductsAgreeWithLoops) {
  for (std::int64_t kp : {std::int64_t{8}, std::int64_t{16}})
    for (std::int64_t n : {std::int64_t{0}, std::int64_t{1}, std::int64_t{37}, interleaved_products_row_block(kp),
                           interleaved_products_row_block(kp) + 5, 2 * interleaved_products_row_block(kp) + 1})
      for (std::int64_t w : {std::int64_t{0}, std::int64_t{1}, std::int64_t{4}, std::int64_t{7}, std::int64_t{13}}) {
        const std::int64_t ldx = n + 3;
        const Matrix x = random_matrix(ldx, std::max<std::int64_t>(w, 1), 11), c = random_matrix(n, kp, 12);
        std::vector<double> ct(static_cast<std::size_t>(n * kp));
        for (std::int64_t r = 0; r < n; ++r)
          for (std::int64_t j = 0; j < kp; ++j) ct[static_cast<std::size_t>(r * kp + j)] = c(r, j);
        std::vector<double> out(static_cast<std::size_t>(w * kp), -1.0);
        interleaved_products(x.data(), n, ldx, w, ct.data(), kp, out.data());
        for (std::int64_t p = 0; p < w; ++p)
          for (std::int64_t j = 0; j < kp; ++j) {
            long double want = 0, scale = 0;
            for (std::int64_t r = 0; r < n; ++r) {
              want += static_cast<long double>(x(r, p)) * c(r, j);
              scale += std::abs(static_cast<long double>(x(r, p)) * c(r, j));
            }
            EXPECT_NEAR(out[static_cast<std::size_t>(p * kp + j)], static_cast<double>(want), 1e-14 * static_cast<double>(scale) + 1e-300)
                << "n " << n << " w " << w << " kp " << kp << " point " << p << " vector " << j;
          }
      }
  // Scattered points by index, read in place: the same values as the same points packed together.
  {
    const std::int64_t n = 500, kp = 8, ldx = n + 1;
    const Matrix x = random_matrix(ldx, 20, 13), c = random_matrix(n, kp, 14);
    std::vector<double> ct(static_cast<std::size_t>(n * kp));
    for (std::int64_t r = 0; r < n; ++r)
      for (std::int64_t j = 0; j < kp; ++j) ct[static_cast<std::size_t>(r * kp + j)] = c(r, j);
    const std::vector<std::int64_t> ids = {19, 3, 4, 11, 0, 7, 7};
    const auto w = static_cast<std::int64_t>(ids.size());
    Matrix packed(ldx, w);
    for (std::int64_t p = 0; p < w; ++p) std::copy_n(x.col(ids[static_cast<std::size_t>(p)]).data(), ldx, packed.col(p).data());
    std::vector<double> by_ids(static_cast<std::size_t>(w * kp)), by_copy(by_ids.size());
    interleaved_products(x.data(), n, ldx, w, ct.data(), kp, by_ids.data(), ids.data());
    interleaved_products(packed.data(), n, ldx, w, ct.data(), kp, by_copy.data());
    EXPECT_EQ(by_ids, by_copy);
  }
  std::vector<double> out(8);
  EXPECT_THROW(interleaved_products(nullptr, 0, 0, 1, nullptr, 6, out.data()), InternalError);
}

TEST(Dense, SymmetricEigenAllAndLeading) {
  const std::vector<double> d = {0.5, 9.0, 3.0, 1.0, 7.0, 2.0};
  Matrix q;
  Matrix a = with_eigenvalues(d, &q);
  Matrix a2 = a, v_all, v_top;
  const auto all = symmetric_eigen(a, 6, &v_all);
  const auto top = symmetric_eigen(a2, 3, &v_top);
  const std::vector<double> sorted = {9, 7, 3, 2, 1, 0.5};
  for (int i = 0; i < 6; ++i) EXPECT_NEAR(all[i], sorted[i], 1e-12);
  for (int i = 0; i < 3; ++i) {
    EXPECT_NEAR(top[i], sorted[i], 1e-12);
    // Same eigenvector up to sign.
    double dot = 0;
    for (int k = 0; k < 6; ++k) dot += v_all(k, i) * v_top(k, i);
    EXPECT_NEAR(std::abs(dot), 1.0, 1e-10);
  }
}

TEST(Dense, SingularVectorsReconstructAndSignsAreCanonical) {
  Matrix a = random_matrix(8, 5, 3), copy = a, u;
  const auto s = left_singular_vectors(copy, u);
  ASSERT_EQ(u.cols(), 5);
  for (int i = 0; i + 1 < 5; ++i) EXPECT_GE(s[i], s[i + 1]);
  // u_j^T a a^T u_j = s_j^2
  Matrix at_u(5, 5);
  gemm(Trans::yes, Trans::no, 1.0, a, u, 0.0, at_u);
  for (int j = 0; j < 5; ++j) {
    double n2 = 0;
    for (double v : at_u.col(j)) n2 += v * v;
    EXPECT_NEAR(n2, s[j] * s[j], 1e-10 * s[0] * s[0]);
  }
  Matrix flipped = u;
  for (double& v : flipped.col(2)) v = -v;
  canonical_signs(u);
  canonical_signs(flipped);
  for (std::int64_t i = 0; i < u.size(); ++i) EXPECT_EQ(u.data()[i], flipped.data()[i]);
}

}  // namespace
}  // namespace popcode

namespace popcode {
namespace {

// select_columns reorders and drops columns in place: it must equal a plain gather into a new matrix, for
// permutations with long cycles, fixed points, swaps, and selections of fewer columns than there are.
TEST(MatrixStorage, SelectColumnsEqualsAGather) {
  CounterRng rng(11);
  for (int trial = 0; trial < 40; ++trial) {
    const std::int64_t rows = 1 + trial % 7, cols = 1 + (trial * 5) % 23;
    Matrix a(rows, cols);
    for (std::int64_t j = 0; j < cols; ++j)
      for (std::int64_t i = 0; i < rows; ++i) a(i, j) = static_cast<double>(1000 * j + i);
    std::vector<std::int64_t> all(static_cast<std::size_t>(cols));
    std::iota(all.begin(), all.end(), 0);
    for (std::int64_t k = cols - 1; k > 0; --k)  // Fisher-Yates from the counter-based generator
      std::swap(all[static_cast<std::size_t>(k)],
                all[rng.below(static_cast<std::uint64_t>(k + 1), Stream::order, static_cast<std::uint32_t>(trial),
                              static_cast<std::uint32_t>(k))]);
    const std::vector<std::int64_t> order(all.begin(), all.begin() + (trial % 3 == 0 ? cols : 1 + trial % cols));
    Matrix expect(rows, static_cast<std::int64_t>(order.size()));
    for (std::size_t c = 0; c < order.size(); ++c)
      for (std::int64_t i = 0; i < rows; ++i) expect(i, static_cast<std::int64_t>(c)) = a(i, order[c]);
    a.select_columns(order);
    ASSERT_EQ(a.rows(), rows);
    ASSERT_EQ(a.cols(), static_cast<std::int64_t>(order.size()));
    for (std::int64_t j = 0; j < a.cols(); ++j)
      for (std::int64_t i = 0; i < rows; ++i) ASSERT_EQ(a(i, j), expect(i, j)) << "trial " << trial;
  }
  Matrix same(3, 4, 1.5);
  same.select_columns({0, 1, 2, 3});  // identity
  EXPECT_EQ(same.cols(), 4);
  EXPECT_EQ(same(2, 3), 1.5);
}

// With POPCODE_HUGE_PAGES=1, Matrix storage of 8 MiB and more starts on a 2 MiB boundary (so it can be backed
// by huge pages); smaller storage comes from the ordinary heap; both keep their values through keep(), copies and moves.
TEST(MatrixStorage, LargeBlocksAreHugePageAligned) {
  // The huge-page path is on only with POPCODE_HUGE_PAGES=1 (the unit_huge_pages run); otherwise large
  // blocks are ordinary heap blocks too, and only the values are checked.
  const bool aligned = huge_pages_enabled();
  const char* env = std::getenv("POPCODE_HUGE_PAGES");
  EXPECT_EQ(aligned, env != nullptr && std::string(env) == "1");
  constexpr std::uintptr_t kTwoMiB = std::uintptr_t{2} << 20;
  Matrix big(1024, 1025);  // 8.0 MiB + 8 KiB
  if (aligned) {
    EXPECT_EQ(reinterpret_cast<std::uintptr_t>(big.data()) % kTwoMiB, 0u);
  }
  for (std::int64_t j = 0; j < big.cols(); ++j)
    for (std::int64_t i = 0; i < big.rows(); ++i) big(i, j) = static_cast<double>(i + 1000 * j);
  Matrix copy = big;
  if (aligned) {
    EXPECT_EQ(reinterpret_cast<std::uintptr_t>(copy.data()) % kTwoMiB, 0u);
  }
  EXPECT_EQ(copy(1023, 1024), 1023.0 + 1024000.0);
  copy.keep({1, 5}, {0, 1024});
  EXPECT_EQ(copy.rows(), 2);
  EXPECT_EQ(copy(1, 1), 5.0 + 1024000.0);
  Matrix moved = std::move(big);
  EXPECT_EQ(moved(7, 3), 3007.0);
  Matrix small(10, 10, 2.5);  // 800 bytes: ordinary heap
  EXPECT_EQ(small(9, 9), 2.5);
}

}  // namespace
}  // namespace popcode
