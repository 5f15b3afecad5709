// cvPCA against a literal serial transcription of shuffledSpectrum.m (explicit neuron-space PCs), at 1, 2
// and 3 ranks; and the SLEPc shell-operator path against the LAPACK path.
#include <gtest/gtest.h>

#include <cmath>

#include "partition/block_layout.hpp"
#include "solvers/cvpca.hpp"
#include "solvers/dense.hpp"
#include "src/rng.hpp"

namespace popcode {
namespace {

// Global repeat-split responses: a shared low-rank signal with a decaying spectrum, plus repeat noise.
double response(std::int64_t neuron, std::int64_t stimulus, int repeat) {
  const CounterRng rng(3);
  double v = 0.7 * rng.normal(Stream::trial_noise, static_cast<std::uint32_t>(neuron),
                              static_cast<std::uint32_t>(stimulus), static_cast<std::uint32_t>(repeat));
  for (std::uint32_t k = 0; k < 12; ++k) {
    v += std::pow(k + 1.0, -0.5) * rng.normal(Stream::neuron, static_cast<std::uint32_t>(neuron), k) *
         rng.normal(Stream::image, static_cast<std::uint32_t>(stimulus), k);
  }
  return v;
}

Matrix local_block(const Context& ctx, std::int64_t n, std::int64_t s) {
  const Range mine = BlockLayout(n, ctx.size()).range(ctx.rank());
  Matrix b(mine.size(), 2 * s);
  for (std::int64_t j = 0; j < s; ++j)
    for (std::int64_t i = 0; i < mine.size(); ++i) {
      b(i, j) = response(mine.begin + i, j, 0);
      b(i, s + j) = response(mine.begin + i, j, 1);
    }
  return b;
}

// shuffledSpectrum.m, literally: V = R_tr' A B^-1/2, cproj = R V, ss = sum(cproj1 .* cproj2).
void reference_pass(std::int64_t n, std::int64_t s, const std::uint8_t* swapped, std::int64_t k, std::vector<double>& ss,
                    std::vector<double>& ns, double& trace) {
  Matrix rtr(s, n), rte(s, n);  // stimuli x neurons
  for (std::int64_t j = 0; j < s; ++j)
    for (std::int64_t i = 0; i < n; ++i) {
      rtr(j, i) = response(i, j, swapped[j] ? 1 : 0);
      rte(j, i) = response(i, j, swapped[j] ? 0 : 1);
    }
  Matrix g(s, s), a;
  gemm(Trans::no, Trans::yes, 1.0, rtr, rtr, 0.0, g);
  const std::vector<double> b = symmetric_eigen(g, k, &a);
  Matrix v(n, k);
  gemm(Trans::yes, Trans::no, 1.0, rtr, a, 0.0, v);
  for (std::int64_t c = 0; c < k; ++c)
    for (double& x : v.col(c)) x /= std::sqrt(b[c]);
  Matrix p1(s, k), p2(s, k);
  gemm(Trans::no, Trans::no, 1.0, rtr, v, 0.0, p1);
  gemm(Trans::no, Trans::no, 1.0, rte, v, 0.0, p2);
  ss.assign(k, 0.0);
  ns.assign(k, 0.0);
  for (std::int64_t c = 0; c < k; ++c) {
    double s12 = 0, s11 = 0, s22 = 0;
    for (std::int64_t j = 0; j < s; ++j) {
      s12 += p1(j, c) * p2(j, c);
      s11 += p1(j, c) * p1(j, c);
      s22 += p2(j, c) * p2(j, c);
    }
    ss[c] = s12;
    ns[c] = s11 + s22 - s12;
  }
  trace = 0;
  for (std::int64_t j = 0; j < s; ++j)
    for (std::int64_t i = 0; i < n; ++i) trace += rtr(j, i) * rte(j, i);
}

void expect_matches_reference(std::int64_t n, std::int64_t s, int nshuff) {
  const Context ctx(MPI_COMM_WORLD);
  CvpcaOptions opt;
  opt.nshuff = nshuff;
  opt.seed = 17;
  opt.solver = EigenSolver::lapack;
  const CvpcaResult r = cross_validated_spectrum(ctx, local_block(ctx, n, s), opt);
  const std::int64_t k = std::min(n, s);
  ASSERT_EQ(r.components, k);
  ASSERT_EQ(r.passes, std::max(1, nshuff));
  std::vector<double> mean_ss(k, 0.0);
  double mean_trace = 0;
  for (int p = 0; p < r.passes; ++p) {
    std::vector<double> ss, ns;
    double trace = 0;
    reference_pass(n, s, r.swapped.data() + p * s, k, ss, ns, trace);
    const double scale = std::abs(ss[0]);
    for (std::int64_t c = 0; c < k; ++c) {
      EXPECT_NEAR(r.signal_per_pass(c, p), ss[c], 1e-10 * scale) << "pass " << p << " component " << c;
      EXPECT_NEAR(r.noise_per_pass(c, p), ns[c], 1e-10 * std::abs(ns[0])) << "pass " << p << " component " << c;
      mean_ss[c] += ss[c] / r.passes;
    }
    EXPECT_NEAR(r.total_per_pass[p], trace, 1e-10 * std::abs(trace));
    mean_trace += trace / r.passes;
  }
  for (std::int64_t c = 0; c < k; ++c) EXPECT_NEAR(r.signal[c], mean_ss[c] / mean_trace, 1e-10 * std::abs(r.signal[0]));
}

TEST(Cvpca, NoSwapPassMatchesShuffledSpectrum) { expect_matches_reference(37, 23, 0); }
TEST(Cvpca, ShuffledPassesMatchShuffledSpectrum) { expect_matches_reference(37, 23, 5); }
TEST(Cvpca, FewerNeuronsThanStimuliKeepsTheMeaningfulComponents) { expect_matches_reference(9, 23, 3); }

TEST(Cvpca, SwapMasksAreDeterministicAndBalanced) {
  const auto a = cvpca_swap_masks(5, 4, 1000), b = cvpca_swap_masks(5, 4, 1000), c = cvpca_swap_masks(6, 4, 1000);
  EXPECT_EQ(a, b);
  EXPECT_NE(a, c);
  long ones = 0;
  for (auto v : a) ones += v;
  EXPECT_NEAR(ones / 4000.0, 0.5, 0.05);
  for (auto v : cvpca_swap_masks(5, 0, 100)) EXPECT_EQ(v, 0);
}

TEST(Cvpca, SlepcShellOperatorAgreesWithLapack) {
  const Context ctx(MPI_COMM_WORLD);
  const std::int64_t n = 45, s = 31;
  const Matrix block = local_block(ctx, n, s);
  CvpcaOptions opt;
  opt.nshuff = 2;
  opt.components = 8;
  opt.solver = EigenSolver::lapack;
  const CvpcaResult dense = cross_validated_spectrum(ctx, block, opt);
  opt.solver = EigenSolver::slepc;
  const CvpcaResult krylov = cross_validated_spectrum(ctx, block, opt);
  ASSERT_EQ(krylov.components, 8);
  for (int p = 0; p < 2; ++p) {
    EXPECT_NEAR(krylov.total_per_pass[p], dense.total_per_pass[p], 1e-10 * std::abs(dense.total_per_pass[p]));
    for (int c = 0; c < 8; ++c) {
      EXPECT_NEAR(krylov.signal_per_pass(c, p), dense.signal_per_pass(c, p), 1e-8 * std::abs(dense.signal_per_pass(0, p)));
      EXPECT_NEAR(krylov.noise_per_pass(c, p), dense.noise_per_pass(c, p), 1e-8 * std::abs(dense.noise_per_pass(0, p)));
    }
  }
}

TEST(Cvpca, RefusesDegenerateInput) {
  const Context ctx(MPI_COMM_WORLD);
  const Range mine = BlockLayout(1, ctx.size()).range(ctx.rank());
  Matrix one_neuron(mine.size(), 10, 1.0);
  EXPECT_THROW(cross_validated_spectrum(ctx, one_neuron, CvpcaOptions{}), InputError);
}

}  // namespace
}  // namespace popcode
