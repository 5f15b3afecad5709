// k-means against a serial Lloyd written from the definition, on planted clusters, with an empty cluster
// to re-seed, at 1, 2 and 3 ranks; and the adjusted Rand index on sklearn's documented examples.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <string>
#include <utility>

#include "partition/block_layout.hpp"
#include "solvers/kmeans.hpp"
#include "src/rng.hpp"

namespace popcode {
namespace {

constexpr std::int64_t kDims = 40, kPoints = 300, kClusters = 5;

std::int32_t planted_label(std::int64_t p) { return static_cast<std::int32_t>((p * 7) % kClusters); }

// Points around 5 random centres (spread 1) with noise `noise` per coordinate.
double planted(std::int64_t c, std::int64_t p, double noise) {
  const CounterRng rng(31);
  return rng.normal(Stream::image, static_cast<std::uint32_t>(c), static_cast<std::uint32_t>(planted_label(p))) +
         noise * rng.normal(Stream::trial_noise, static_cast<std::uint32_t>(c), static_cast<std::uint32_t>(p));
}

Matrix block(const Context& ctx, double noise) {
  const Range mine = BlockLayout(kDims, ctx.size()).range(ctx.rank());
  Matrix m(mine.size(), kPoints);
  for (std::int64_t p = 0; p < kPoints; ++p)
    for (std::int64_t i = 0; i < mine.size(); ++i) m(i, p) = planted(mine.begin + i, p, noise);
  return m;
}

// Serial Lloyd from the definition (full squared distances, ties to the lower centre, sklearn's stopping
// rules, the empty-cluster rule of the solver). Returns labels and inertia.
std::pair<std::vector<std::int32_t>, double> serial_lloyd(std::vector<std::vector<double>> centres, double noise, double tol) {
  std::vector<std::vector<double>> x(kPoints, std::vector<double>(kDims));
  for (std::int64_t p = 0; p < kPoints; ++p)
    for (std::int64_t c = 0; c < kDims; ++c) x[static_cast<std::size_t>(p)][static_cast<std::size_t>(c)] = planted(c, p, noise);
  double var = 0;
  for (std::int64_t c = 0; c < kDims; ++c) {
    double m = 0, q = 0;
    for (std::int64_t p = 0; p < kPoints; ++p) m += x[static_cast<std::size_t>(p)][static_cast<std::size_t>(c)] / kPoints;
    for (std::int64_t p = 0; p < kPoints; ++p) q += std::pow(x[static_cast<std::size_t>(p)][static_cast<std::size_t>(c)] - m, 2) / kPoints;
    var += q / kDims;
  }
  const auto k = static_cast<std::int64_t>(centres.size());
  const auto assign = [&](std::vector<double>* own) {
    std::vector<std::int32_t> l(kPoints);
    for (std::int64_t p = 0; p < kPoints; ++p) {
      double best = std::numeric_limits<double>::infinity();
      for (std::int64_t j = 0; j < k; ++j) {
        double d = 0;
        for (std::int64_t c = 0; c < kDims; ++c)
          d += std::pow(x[static_cast<std::size_t>(p)][static_cast<std::size_t>(c)] - centres[static_cast<std::size_t>(j)][static_cast<std::size_t>(c)], 2);
        if (d < best) {
          best = d;
          l[static_cast<std::size_t>(p)] = static_cast<std::int32_t>(j);
        }
      }
      if (own) (*own)[static_cast<std::size_t>(p)] = best;
    }
    return l;
  };
  std::vector<std::int32_t> labels, previous(kPoints, -1);
  std::vector<double> own(kPoints);
  bool strict = false;
  for (int it = 0; it < 300; ++it) {
    labels = assign(&own);
    std::vector<std::vector<double>> sums(static_cast<std::size_t>(k), std::vector<double>(kDims, 0.0));
    std::vector<std::int64_t> count(static_cast<std::size_t>(k), 0);
    for (std::int64_t p = 0; p < kPoints; ++p) {
      ++count[static_cast<std::size_t>(labels[static_cast<std::size_t>(p)])];
      for (std::int64_t c = 0; c < kDims; ++c)
        sums[static_cast<std::size_t>(labels[static_cast<std::size_t>(p)])][static_cast<std::size_t>(c)] += x[static_cast<std::size_t>(p)][static_cast<std::size_t>(c)];
    }
    std::vector<std::int64_t> order(kPoints);
    for (std::int64_t p = 0; p < kPoints; ++p) order[static_cast<std::size_t>(p)] = p;
    std::stable_sort(order.begin(), order.end(), [&](std::int64_t a, std::int64_t b) { return own[static_cast<std::size_t>(a)] > own[static_cast<std::size_t>(b)]; });
    std::size_t next = 0;
    for (std::int64_t j = 0; j < k; ++j)
      if (count[static_cast<std::size_t>(j)] == 0) {
        const std::int64_t far = order[next++];
        const std::int32_t from = labels[static_cast<std::size_t>(far)];
        for (std::int64_t c = 0; c < kDims; ++c) {
          sums[static_cast<std::size_t>(from)][static_cast<std::size_t>(c)] -= x[static_cast<std::size_t>(far)][static_cast<std::size_t>(c)];
          sums[static_cast<std::size_t>(j)][static_cast<std::size_t>(c)] = x[static_cast<std::size_t>(far)][static_cast<std::size_t>(c)];
        }
        --count[static_cast<std::size_t>(from)];
        count[static_cast<std::size_t>(j)] = 1;
      }
    double shift = 0;
    for (std::int64_t j = 0; j < k; ++j)
      for (std::int64_t c = 0; c < kDims; ++c) {
        const double v = sums[static_cast<std::size_t>(j)][static_cast<std::size_t>(c)] / static_cast<double>(count[static_cast<std::size_t>(j)]);
        shift += std::pow(v - centres[static_cast<std::size_t>(j)][static_cast<std::size_t>(c)], 2);
        centres[static_cast<std::size_t>(j)][static_cast<std::size_t>(c)] = v;
      }
    if (labels == previous) {
      strict = true;
      break;
    }
    if (shift <= tol * var) break;
    previous = labels;
  }
  if (!strict) labels = assign(&own);
  double inertia = 0;
  for (double v : own) inertia += v;
  return {labels, inertia};
}

// Initial centres (this rank's rows): points 0, 1, 2 and 3, and one far from everything, which is empty at
// first. `whole`, when given, receives all the centres' coordinates.
Matrix empty_cluster_start(const Context& ctx, double noise, std::vector<std::vector<double>>* whole = nullptr) {
  const Range mine = BlockLayout(kDims, ctx.size()).range(ctx.rank());
  Matrix c(mine.size(), kClusters);
  for (std::int64_t j = 0; j < kClusters; ++j) {
    std::vector<double> centre;
    for (std::int64_t d = 0; d < kDims; ++d) centre.push_back(j < 4 ? planted(d, j, noise) : 100.0);
    for (std::int64_t i = 0; i < mine.size(); ++i) c(i, j) = centre[static_cast<std::size_t>(mine.begin + i)];
    if (whole != nullptr) whole->push_back(std::move(centre));
  }
  return c;
}

class KmeansTest : public ::testing::Test {
 protected:
  Context ctx{MPI_COMM_WORLD};
};

TEST_F(KmeansTest, LloydEqualsSerialReferenceAndReseedsAnEmptyCluster) {
  const double noise = 0.8;
  const Matrix x = block(ctx, noise);
  std::vector<std::vector<double>> start;
  const Matrix c = empty_cluster_start(ctx, noise, &start);
  KmeansOptions o;
  o.k = kClusters;
  const KmeansResult r = kmeans_from(ctx, x, c, o);
  const auto [labels, inertia] = serial_lloyd(start, noise, o.tol);
  EXPECT_EQ(r.labels, labels);
  EXPECT_NEAR(r.inertia, inertia, 1e-9 * inertia);
  EXPECT_GE(r.reseeded, 1);
  for (std::int64_t n : r.sizes) EXPECT_GT(n, 0);
}

TEST_F(KmeansTest, RecoversPlantedClustersAtModerateNoise) {
  const Matrix x = block(ctx, 1.5);  // noise s.d. 1.5 x the spread of the centres, per coordinate
  KmeansOptions o;
  o.k = kClusters;
  o.n_init = 3;
  o.seed = 2;
  const KmeansResult r = kmeans(ctx, x, o);
  std::vector<std::int32_t> truth;
  for (std::int64_t p = 0; p < kPoints; ++p) truth.push_back(planted_label(p));
  const double ari = adjusted_rand_index(truth, r.labels);
  if (ctx.root()) std::printf("  planted 5 clusters, noise 1.5: ARI %.4f, inertia %.2f\n", ari, r.inertia);
  EXPECT_GE(ari, 0.9);
  EXPECT_EQ(static_cast<std::int64_t>(r.init_points.size()), kClusters);
}

// Standardising on the fly (RowScaling) must give what k-means gives on a standardised copy: the same
// k-means++ starts, labels and iterations, and the same centres and inertia up to rounding (the products
// are formed from the stored values and scaled centres, not from standardised values). The block is shifted
// by 50-90 and scaled per row first, so the offsets are large next to the standardised values (the case
// where forming the products that way loses the most), and one row is made constant (scale 0). Also with
// k = 9, two blocks of 8 products. One initialisation per run: with several, two starts that reach the same
// partition tie on inertia, and rounding picks which start is kept.
TEST_F(KmeansTest, OnTheFlyStandardisationEqualsAStandardisedCopy) {
  Matrix x = block(ctx, 1.0);
  const Range mine = BlockLayout(kDims, ctx.size()).range(ctx.rank());
  RowScaling scaling;
  Matrix copy = x;
  for (std::int64_t i = 0; i < x.rows(); ++i) {
    const auto g = static_cast<double>(mine.begin + i);
    for (std::int64_t p = 0; p < kPoints; ++p) x(i, p) = (mine.begin + i == 3) ? 7.0 : 50 + g + (1 + 0.1 * g) * x(i, p);
    double m = 0, v = 0;
    for (std::int64_t p = 0; p < kPoints; ++p) m += x(i, p);
    m /= kPoints;
    for (std::int64_t p = 0; p < kPoints; ++p) v += (x(i, p) - m) * (x(i, p) - m);
    const double scale = v > 0 ? 1 / std::sqrt(v / kPoints) : 0.0;
    scaling.offset.push_back(m);
    scaling.scale.push_back(scale);
    for (std::int64_t p = 0; p < kPoints; ++p) copy(i, p) = (x(i, p) - m) * scale;
  }
  for (std::int64_t k : {std::int64_t{5}, std::int64_t{9}})
    for (std::uint64_t seed : {4u, 6u}) {
      KmeansOptions o;
      o.k = k;
      o.seed = seed;
      const KmeansResult a = kmeans(ctx, copy, o), b = kmeans(ctx, x, o, &scaling);
      const std::string what = fmt::format("k = {}, seed {}", k, seed);
      EXPECT_EQ(a.init_points, b.init_points) << what;
      EXPECT_EQ(a.labels, b.labels) << what;
      EXPECT_EQ(a.iterations, b.iterations) << what;
      EXPECT_NEAR(a.inertia, b.inertia, 1e-12 * a.inertia) << what;
      EXPECT_EQ(a.centres.values().size(), b.centres.values().size());
      for (std::size_t i = 0; i < a.centres.values().size(); ++i)
        ASSERT_NEAR(a.centres.values()[i], b.centres.values()[i], 1e-12) << what << ", value " << i;
    }
}

// The triangle-inequality bounds only decide which points need reading: with them, Lloyd must take the
// same iterations to the same labels as without, and the centres and inertia may differ only by the
// rounding of the incremental centre sums. Checked at two noise levels (clean clusters, where nearly every
// point is skipped after the first iterations, and overlapping ones, where labels keep changing), with
// k-means++ starts and with a start that leaves a cluster empty; the bounds must actually skip points.
TEST_F(KmeansTest, BoundsSkipPointsWithoutChangingTheResult) {
  for (const double noise : {0.5, 2.0}) {
    const Matrix x = block(ctx, noise);
    for (const std::uint64_t seed : {1u, 5u, 9u}) {
      KmeansOptions o;
      o.k = seed == 1u ? kClusters : 11;
      o.seed = seed;
      if (seed == 9u) o.bounds_history = 2;  // snapshots dropped, their points re-read
      o.tol = 0;  // run to strict convergence: the longest path through the bounds
      KmeansOptions plain = o;
      plain.bounds = false;
      const KmeansResult a = kmeans(ctx, x, plain), b = kmeans(ctx, x, o);
      const std::string what = fmt::format("noise {}, k {}, seed {}", noise, o.k, seed);
      EXPECT_EQ(a.points_skipped, 0) << what;
      EXPECT_GT(b.points_skipped, 0) << what;
      EXPECT_EQ(a.labels, b.labels) << what;
      EXPECT_EQ(a.iterations, b.iterations) << what;
      EXPECT_EQ(a.reseeded, b.reseeded) << what;
      EXPECT_NEAR(a.inertia, b.inertia, 1e-12 * a.inertia) << what;
      ASSERT_EQ(a.centres.values().size(), b.centres.values().size());
      for (std::size_t i = 0; i < a.centres.values().size(); ++i)
        ASSERT_NEAR(a.centres.values()[i], b.centres.values()[i], 1e-12) << what << ", value " << i;
      if (ctx.root())
        std::printf("  %s: %d iterations, %lld of %lld point reads skipped\n", what.c_str(), b.iterations,
                    static_cast<long long>(b.points_skipped), static_cast<long long>(b.iterations) * kPoints);
    }
  }
  // An empty cluster to re-seed (the start of LloydEqualsSerialReferenceAndReseedsAnEmptyCluster).
  const double noise = 0.8;
  const Matrix x = block(ctx, noise);
  const Matrix c = empty_cluster_start(ctx, noise);
  KmeansOptions o;
  o.k = kClusters;
  KmeansOptions plain = o;
  plain.bounds = false;
  const KmeansResult a = kmeans_from(ctx, x, c, plain), b = kmeans_from(ctx, x, c, o);
  EXPECT_GE(b.reseeded, 1);
  EXPECT_EQ(a.reseeded, b.reseeded);
  EXPECT_EQ(a.labels, b.labels);
  EXPECT_EQ(a.iterations, b.iterations);
  EXPECT_NEAR(a.inertia, b.inertia, 1e-12 * a.inertia);
}

TEST_F(KmeansTest, RefusesKAtLeastThePointCount) {
  const Matrix x = block(ctx, 1.0);
  KmeansOptions o;
  o.k = kPoints;
  EXPECT_THROW(kmeans(ctx, x, o), InputError);
}

TEST(AdjustedRandIndex, MatchesSklearnExamples) {
  // Values from sklearn.metrics.adjusted_rand_score's documentation.
  EXPECT_DOUBLE_EQ(adjusted_rand_index({0, 0, 1, 1}, {0, 0, 1, 1}), 1.0);
  EXPECT_DOUBLE_EQ(adjusted_rand_index({0, 0, 1, 1}, {1, 1, 0, 0}), 1.0);
  EXPECT_NEAR(adjusted_rand_index({0, 0, 1, 2}, {0, 0, 1, 1}), 0.5714285714285714, 1e-15);
  EXPECT_NEAR(adjusted_rand_index({0, 0, 1, 1}, {0, 0, 1, 2}), 0.5714285714285714, 1e-15);
  EXPECT_DOUBLE_EQ(adjusted_rand_index({0, 0, 0, 0}, {0, 1, 2, 3}), 0.0);
  EXPECT_DOUBLE_EQ(adjusted_rand_index({0, 0, 1, 1}, {0, 1, 0, 1}), -0.5);
}

}  // namespace
}  // namespace popcode
