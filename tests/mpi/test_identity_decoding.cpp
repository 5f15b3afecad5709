// Identity decoding against a brute-force serial reference (explicit loops: two-pass z-scores, Pearson
// correlation of every pair of population vectors, first maximum), at 1, 2 and 3 ranks.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <set>

#include "partition/block_layout.hpp"
#include "solvers/identity_decoding.hpp"
#include "src/rng.hpp"

namespace popcode {
namespace {

constexpr std::int64_t kNeurons = 97, kStimuli = 40;

// Weak shared signal plus private repeat noise, so decoding is neither perfect nor at chance. Neuron 5 is
// constant in repeat 1 (zero variance over stimuli).
double response(std::int64_t neuron, std::int64_t stimulus, int repeat) {
  if (neuron == 5 && repeat == 0) return 2.5;
  const CounterRng rng(11);
  const auto n = static_cast<std::uint32_t>(neuron), s = static_cast<std::uint32_t>(stimulus);
  return 0.45 * rng.normal(Stream::image, n, s) + rng.normal(Stream::trial_noise, n, s, static_cast<std::uint32_t>(repeat)) +
         0.3 * neuron / static_cast<double>(kNeurons);
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

struct Reference {
  std::vector<std::int32_t> predicted, true_rank;
  double accuracy = 0;
};

// Brute force on the listed global neurons.
Reference brute_force(const std::vector<std::int64_t>& neurons, IdentitySimilarity sim) {
  const auto n = neurons.size();
  // z[r][k][s]
  std::vector<std::vector<std::vector<double>>> z(2, std::vector<std::vector<double>>(n, std::vector<double>(kStimuli, 0.0)));
  for (int r = 0; r < 2; ++r)
    for (std::size_t k = 0; k < n; ++k) {
      double mean = 0;
      for (std::int64_t s = 0; s < kStimuli; ++s) mean += response(neurons[k], s, r);
      mean /= kStimuli;
      double var = 0;
      for (std::int64_t s = 0; s < kStimuli; ++s) var += std::pow(response(neurons[k], s, r) - mean, 2);
      const double sd = std::sqrt(var / (kStimuli - 1));
      if (sd > 0)
        for (std::int64_t s = 0; s < kStimuli; ++s) z[r][k][static_cast<std::size_t>(s)] = (response(neurons[k], s, r) - mean) / sd;
    }
  const auto similarity = [&](std::int64_t t, std::int64_t s) {
    std::vector<double> a(n), b(n);
    for (std::size_t k = 0; k < n; ++k) {
      a[k] = z[0][k][static_cast<std::size_t>(t)];
      b[k] = z[1][k][static_cast<std::size_t>(s)];
    }
    if (sim == IdentitySimilarity::dot) {
      double d = 0;
      for (std::size_t k = 0; k < n; ++k) d += a[k] * b[k];
      return d;
    }
    double ma = 0, mb = 0;
    for (std::size_t k = 0; k < n; ++k) {
      ma += a[k] / static_cast<double>(n);
      mb += b[k] / static_cast<double>(n);
    }
    double sab = 0, saa = 0, sbb = 0;
    for (std::size_t k = 0; k < n; ++k) {
      sab += (a[k] - ma) * (b[k] - mb);
      saa += (a[k] - ma) * (a[k] - ma);
      sbb += (b[k] - mb) * (b[k] - mb);
    }
    return sab / std::sqrt(saa * sbb);
  };
  Reference ref;
  std::int64_t correct = 0;
  for (std::int64_t s = 0; s < kStimuli; ++s) {
    std::vector<double> v(static_cast<std::size_t>(kStimuli));
    // Undefined (NaN) similarities never win; none defined: undecided. Within 1e-12 of the maximum is a
    // tie, won by the lowest index.
    double top = -INFINITY;
    for (std::int64_t t = 0; t < kStimuli; ++t) {
      v[static_cast<std::size_t>(t)] = similarity(t, s);
      if (!std::isnan(v[static_cast<std::size_t>(t)])) top = std::max(top, v[static_cast<std::size_t>(t)]);
    }
    const double eps = 1e-12 * std::max(1.0, std::abs(top));
    std::int32_t best = -1;
    for (std::int64_t t = kStimuli - 1; t >= 0; --t)
      if (v[static_cast<std::size_t>(t)] >= top - eps) best = static_cast<std::int32_t>(t);
    ref.predicted.push_back(best);
    ref.true_rank.push_back(std::isnan(v[static_cast<std::size_t>(s)])
                                ? static_cast<std::int32_t>(kStimuli)
                                : static_cast<std::int32_t>(std::count_if(v.begin(), v.end(), [&](double x) {
                                    return x > v[static_cast<std::size_t>(s)] + eps;
                                  })));
    correct += best == s ? 1 : 0;
  }
  ref.accuracy = static_cast<double>(correct) / kStimuli;
  return ref;
}

std::vector<std::int64_t> all_neurons() {
  std::vector<std::int64_t> v(kNeurons);
  for (std::int64_t i = 0; i < kNeurons; ++i) v[static_cast<std::size_t>(i)] = i;
  return v;
}

std::vector<std::int64_t> local_rows(const Context& ctx, const std::vector<std::int64_t>& global) {
  const Range mine = BlockLayout(kNeurons, ctx.size()).range(ctx.rank());
  std::vector<std::int64_t> out;
  for (std::int64_t g : global)
    if (mine.contains(g)) out.push_back(g - mine.begin);
  return out;
}

class IdentityDecodingTest : public ::testing::Test {
 protected:
  Context ctx{MPI_COMM_WORLD};
};

TEST_F(IdentityDecodingTest, AllNeuronsEqualBruteForceForBothSimilarities) {
  const Matrix block = local_block(ctx);
  for (IdentitySimilarity sim : {IdentitySimilarity::correlation, IdentitySimilarity::dot}) {
    SCOPED_TRACE(identity_similarity_name(sim));
    const IdentityDecoding got = decode_identity(ctx, block, {}, true, sim);
    const Reference ref = brute_force(all_neurons(), sim);
    EXPECT_EQ(got.predicted, ref.predicted);
    EXPECT_EQ(got.true_rank, ref.true_rank);
    EXPECT_DOUBLE_EQ(got.accuracy, ref.accuracy);
    EXPECT_EQ(got.neurons, kNeurons);
    EXPECT_EQ(got.zero_variance_neurons, 1);  // neuron 5, repeat 1
    EXPECT_EQ(got.undecided, 0);
    // The planted signal is weak: decoding must be informative but not trivially perfect, or this test
    // could not tell a wrong argmax from a right one.
    EXPECT_GT(ref.accuracy, 3.0 / kStimuli);
    EXPECT_LT(ref.accuracy, 1.0);
  }
}

TEST_F(IdentityDecodingTest, NeuronSubsetsEqualBruteForce) {
  const Matrix block = local_block(ctx);
  for (std::int64_t m : {std::int64_t{2}, std::int64_t{3}, std::int64_t{17}, std::int64_t{60}}) {  // 2: all +-1, ties
    for (std::int64_t d = 0; d < 2; ++d) {
      const std::vector<std::int64_t> subset = draw_neuron_subset(kNeurons, m, 4, d);
      const IdentityDecoding got =
          decode_identity(ctx, block, local_rows(ctx, subset), false, IdentitySimilarity::correlation);
      const Reference ref = brute_force(subset, IdentitySimilarity::correlation);
      EXPECT_EQ(got.predicted, ref.predicted) << m << " neurons, draw " << d;
      EXPECT_EQ(got.neurons, m);
    }
  }
}

TEST_F(IdentityDecodingTest, OneNeuronHasNoCorrelationButHasADotProduct) {
  const Matrix block = local_block(ctx);
  const std::vector<std::int64_t> one = {42};
  const IdentityDecoding corr = decode_identity(ctx, block, local_rows(ctx, one), false, IdentitySimilarity::correlation);
  EXPECT_EQ(corr.undecided, kStimuli);
  EXPECT_EQ(corr.accuracy, 0.0);
  EXPECT_EQ(corr.predicted, brute_force(one, IdentitySimilarity::correlation).predicted);  // all -1
  for (std::int32_t p : corr.predicted) EXPECT_EQ(p, -1);
  const IdentityDecoding dot = decode_identity(ctx, block, local_rows(ctx, one), false, IdentitySimilarity::dot);
  EXPECT_EQ(dot.undecided, 0);
  EXPECT_EQ(dot.predicted, brute_force(one, IdentitySimilarity::dot).predicted);
}

TEST_F(IdentityDecodingTest, SubsetDrawsAreValidAndRankIndependent) {
  for (std::int64_t m : {std::int64_t{1}, std::int64_t{10}, kNeurons}) {
    const auto a = draw_neuron_subset(kNeurons, m, 9, 0);
    ASSERT_EQ(static_cast<std::int64_t>(a.size()), m);
    EXPECT_TRUE(std::is_sorted(a.begin(), a.end()));
    EXPECT_EQ(static_cast<std::int64_t>(std::set<std::int64_t>(a.begin(), a.end()).size()), m);
    EXPECT_GE(a.front(), 0);
    EXPECT_LT(a.back(), kNeurons);
  }
  EXPECT_NE(draw_neuron_subset(kNeurons, 10, 9, 0), draw_neuron_subset(kNeurons, 10, 9, 1));
  EXPECT_EQ(draw_neuron_subset(kNeurons, 10, 9, 1), draw_neuron_subset(kNeurons, 10, 9, 1));
}

TEST_F(IdentityDecodingTest, CurveMatchesDirectDecodingOfEachDraw) {
  const Matrix block = local_block(ctx);
  const Range mine = BlockLayout(kNeurons, ctx.size()).range(ctx.rank());
  IdentityCurveOptions o;
  o.subset_sizes = {1, 8, 200, kNeurons, 8};  // 200 exceeds the population; 8 twice
  o.draws = 3;
  o.seed = 4;
  const IdentityCurve c = identity_curve(ctx, block, mine.begin, kNeurons, o);
  ASSERT_EQ(c.sizes, (std::vector<std::int64_t>{1, 8, kNeurons}));
  ASSERT_EQ(c.accuracy.size(), 9u);
  for (std::size_t i = 0; i < c.sizes.size(); ++i)
    for (int d = 0; d < 3; ++d) {
      const auto subset = draw_neuron_subset(kNeurons, c.sizes[i], 4, d);
      EXPECT_DOUBLE_EQ(c.accuracy[i * 3 + static_cast<std::size_t>(d)],
                       brute_force(subset, IdentitySimilarity::correlation).accuracy);
    }
  EXPECT_EQ(c.undecided[0], kStimuli);  // one neuron: no correlation
  EXPECT_LT(c.std[2], 1e-15);           // every draw of all neurons is the same set
}

}  // namespace
}  // namespace popcode
