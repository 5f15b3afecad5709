// Distributed truncated SVD (gram and SLEPc methods) against a serial LAPACK reference, at 1, 2, 3 ranks.
#include <gtest/gtest.h>

#include <cmath>

#include "partition/block_layout.hpp"
#include "solvers/dense.hpp"
#include "solvers/distributed_svd.hpp"
#include "src/rng.hpp"

namespace popcode {
namespace {

// Global test matrix, a function of (i, t) only: a strong rank-6 part plus noise.
double entry(std::int64_t i, std::int64_t t) {
  const CounterRng rng(11);
  double v = 0.1 * rng.normal(Stream::image, static_cast<std::uint32_t>(i), static_cast<std::uint32_t>(t));
  for (std::uint32_t k = 0; k < 6; ++k) {
    v += (10.0 - k) * rng.normal(Stream::neuron, static_cast<std::uint32_t>(i), k) *
         rng.normal(Stream::spont_latent, static_cast<std::uint32_t>(t), k) / std::sqrt(40.0);
  }
  return v;
}

void check_method(SvdMethod method, double tol_values, double tol_vectors) {
  const Context ctx(MPI_COMM_WORLD);
  const std::int64_t n = 61, t = 40, k = 5;
  const Range mine = BlockLayout(n, ctx.size()).range(ctx.rank());
  Matrix local(mine.size(), t), full(n, t);
  for (std::int64_t j = 0; j < t; ++j)
    for (std::int64_t i = 0; i < n; ++i) {
      full(i, j) = entry(i, j);
      if (mine.contains(i)) local(i - mine.begin, j) = full(i, j);
    }
  // Reference: eigen-decomposition of A^T A from the whole (small) matrix.
  Matrix g, w_ref;
  gram(full, g);
  const std::vector<double> lambda = symmetric_eigen(g, k, &w_ref);
  const TruncatedSvd svd = leading_singular_triplets(ctx, local, k, method);
  ASSERT_EQ(static_cast<std::int64_t>(svd.singular_values.size()), k);
  for (std::int64_t j = 0; j < k; ++j) {
    EXPECT_NEAR(svd.singular_values[j], std::sqrt(lambda[j]), tol_values * std::sqrt(lambda[0]));
    double dot = 0;
    for (std::int64_t r = 0; r < t; ++r) dot += svd.w(r, j) * w_ref(r, j);
    EXPECT_NEAR(std::abs(dot), 1.0, tol_vectors) << "component " << j;
  }
  // U is orthonormal over all ranks and equals A W / s row by row.
  Matrix utu(k, k);
  gemm(Trans::yes, Trans::no, 1.0, svd.u_local, svd.u_local, 0.0, utu);
  ctx.allreduce_sum(utu.values());
  for (std::int64_t a = 0; a < k; ++a)
    for (std::int64_t b = 0; b < k; ++b) EXPECT_NEAR(utu(a, b), a == b ? 1.0 : 0.0, tol_vectors);
  for (std::int64_t i = 0; i < mine.size(); ++i) {
    for (std::int64_t j = 0; j < k; ++j) {
      double aw = 0;
      for (std::int64_t r = 0; r < t; ++r) aw += local(i, r) * svd.w(r, j);
      EXPECT_NEAR(svd.u_local(i, j), aw / svd.singular_values[j], tol_vectors);
    }
  }
}

TEST(DistributedSvd, GramMethodMatchesSerialLapack) { check_method(SvdMethod::gram, 1e-12, 1e-10); }
TEST(DistributedSvd, SlepcMethodMatchesSerialLapack) { check_method(SvdMethod::slepc, 1e-10, 1e-8); }

TEST(DistributedSvd, RejectsImpossibleRank) {
  const Context ctx(MPI_COMM_WORLD);
  const Range mine = BlockLayout(4, ctx.size()).range(ctx.rank());
  Matrix local(mine.size(), 10, 1.0);
  EXPECT_THROW(leading_singular_triplets(ctx, local, 5, SvdMethod::gram), InternalError);
}

}  // namespace
}  // namespace popcode
