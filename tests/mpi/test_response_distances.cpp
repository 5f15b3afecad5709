// Response-distance distributions against a brute-force reference (every pair of population vectors by
// explicit loops; AUC by comparing every same-image distance with every different-image one), at 1, 2 and
// 3 ranks.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

#include "partition/block_layout.hpp"
#include "solvers/response_distances.hpp"
#include "src/rng.hpp"

namespace popcode {
namespace {

constexpr std::int64_t kNeurons = 53, kStimuli = 31;

// Stimulus signal shared by both repeats plus repeat noise; neuron 4 constant in repeat 2; neuron scales
// differ so z-scoring changes the answer.
double response(std::int64_t neuron, std::int64_t stimulus, int repeat) {
  if (neuron == 4 && repeat == 1) return -1.0;
  const CounterRng rng(21);
  const auto n = static_cast<std::uint32_t>(neuron), s = static_cast<std::uint32_t>(stimulus);
  return (1.0 + neuron % 5) * (0.8 * rng.normal(Stream::image, n, s) +
                               rng.normal(Stream::trial_noise, n, s, static_cast<std::uint32_t>(repeat)));
}

Matrix local_block(const Context& ctx) {
  const Range mine = BlockLayout(kNeurons, ctx.size()).range(ctx.rank());
  Matrix b(mine.size(), 2 * kStimuli);
  for (std::int64_t i = 0; i < mine.size(); ++i)
    for (std::int64_t j = 0; j < kStimuli; ++j) {
      b(i, j) = response(mine.begin + i, j, 0);
      b(i, kStimuli + j) = response(mine.begin + i, j, 1);
    }
  return b;
}

// x[r][n][s], z-scored per neuron and repeat when asked (s.d. with S - 1; constant -> 0).
std::vector<std::vector<std::vector<double>>> reference_data(bool zscored) {
  std::vector<std::vector<std::vector<double>>> x(2, std::vector<std::vector<double>>(kNeurons, std::vector<double>(kStimuli)));
  for (int r = 0; r < 2; ++r)
    for (std::int64_t n = 0; n < kNeurons; ++n) {
      auto& row = x[static_cast<std::size_t>(r)][static_cast<std::size_t>(n)];
      for (std::int64_t s = 0; s < kStimuli; ++s) row[static_cast<std::size_t>(s)] = response(n, s, r);
      if (!zscored) continue;
      double mean = 0, var = 0;
      for (double v : row) mean += v;
      mean /= kStimuli;  // (summing v / S instead leaves a constant neuron a rounding-level variance)
      for (double v : row) var += (v - mean) * (v - mean) / (kStimuli - 1);
      for (double& v : row) v = var > 0 ? (v - mean) / std::sqrt(var) : 0.0;
    }
  return x;
}

class ResponseDistancesTest : public ::testing::Test {
 protected:
  Context ctx{MPI_COMM_WORLD};
};

TEST_F(ResponseDistancesTest, EqualBruteForceRawAndZscored) {
  const Matrix block = local_block(ctx);
  for (bool zscored : {false, true}) {
    SCOPED_TRACE(zscored ? "z-scored" : "raw");
    const auto x = reference_data(zscored);
    std::vector<double> same, diff;
    for (std::int64_t t = 0; t < kStimuli; ++t)
      for (std::int64_t s = 0; s < kStimuli; ++s) {
        double d2 = 0;
        for (std::int64_t n = 0; n < kNeurons; ++n)
          d2 += std::pow(x[0][static_cast<std::size_t>(n)][static_cast<std::size_t>(t)] - x[1][static_cast<std::size_t>(n)][static_cast<std::size_t>(s)], 2);
        (t == s ? same : diff).push_back(std::sqrt(d2));
      }
    const DistanceDistributions r = response_distances(ctx, block, zscored, 9);
    ASSERT_EQ(r.same.size(), same.size());
    for (std::size_t i = 0; i < same.size(); ++i) EXPECT_NEAR(r.same[i], same[i], 1e-10 * same[i]);
    const auto mean = [](const std::vector<double>& v) {
      double m = 0;
      for (double e : v) m += e;
      return m / static_cast<double>(v.size());
    };
    const auto sd = [&](const std::vector<double>& v) {
      const double m = mean(v);
      double q = 0;
      for (double e : v) q += (e - m) * (e - m);
      return std::sqrt(q / static_cast<double>(v.size()));
    };
    EXPECT_NEAR(r.same_summary.mean, mean(same), 1e-10 * mean(same));
    EXPECT_NEAR(r.different_summary.mean, mean(diff), 1e-10 * mean(diff));
    EXPECT_NEAR(r.same_summary.std, sd(same), 1e-8 * sd(same));
    EXPECT_NEAR(r.different_summary.std, sd(diff), 1e-8 * sd(diff));
    EXPECT_EQ(r.different_summary.count, kStimuli * (kStimuli - 1));
    const double dp = (mean(diff) - mean(same)) / std::sqrt((sd(diff) * sd(diff) + sd(same) * sd(same)) / 2);
    EXPECT_NEAR(r.d_prime, dp, 1e-8 * std::abs(dp));
    double wins = 0;
    for (double a : same)
      for (double b : diff) wins += a < b ? 1.0 : (a == b ? 0.5 : 0.0);
    EXPECT_NEAR(r.auc, wins / (static_cast<double>(same.size()) * static_cast<double>(diff.size())), 1e-12);
    EXPECT_GT(r.auc, 0.6);  // the shared signal separates the two sets, but not perfectly
    EXPECT_LT(r.auc, 1.0);
    // Histogram: common bins over all distances, [e_b, e_b+1), the last closed.
    const double lo = std::min(*std::min_element(same.begin(), same.end()), *std::min_element(diff.begin(), diff.end()));
    const double hi = std::max(*std::max_element(same.begin(), same.end()), *std::max_element(diff.begin(), diff.end()));
    std::vector<std::int64_t> cs(9, 0), cd(9, 0);
    for (double v : same) cs[static_cast<std::size_t>(std::min(8, static_cast<int>((v - lo) / (hi - lo) * 9)))]++;
    for (double v : diff) cd[static_cast<std::size_t>(std::min(8, static_cast<int>((v - lo) / (hi - lo) * 9)))]++;
    EXPECT_EQ(r.same_counts, cs);
    EXPECT_EQ(r.different_counts, cd);
    EXPECT_EQ(r.zero_variance, zscored ? 1 : 0);
  }
}

}  // namespace
}  // namespace popcode
