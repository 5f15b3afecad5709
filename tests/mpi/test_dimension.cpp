// kNN graph, geodesic histogram and intrinsic-dimension estimators: brute-force references (all pairwise
// distances, Floyd-Warshall) at 1, 2 and 3 ranks, and planted dimensions (uniform samples on d-spheres and
// flat Gaussian clouds of dimension d embedded in more coordinates).
#include <gtest/gtest.h>
#include <fmt/format.h>

#include <algorithm>
#include <cstdio>
#include <cmath>
#include <limits>
#include <map>
#include <queue>

#include "partition/block_layout.hpp"
#include "solvers/geodesic.hpp"
#include "solvers/intrinsic_dimension.hpp"
#include "solvers/knn.hpp"
#include "src/rng.hpp"

namespace popcode {
namespace {

// Global points as a function: coordinate (the "neuron") c of point p. `coordinates` rows are split over
// ranks like a recording's neurons.
template <typename F>
Matrix local_points(const Context& ctx, std::int64_t coordinates, std::int64_t points, F value) {
  const Range mine = BlockLayout(coordinates, ctx.size()).range(ctx.rank());
  Matrix m(mine.size(), points);
  for (std::int64_t p = 0; p < points; ++p)
    for (std::int64_t i = 0; i < mine.size(); ++i) m(i, p) = value(mine.begin + i, p);
  return m;
}

double gaussian(std::uint64_t seed, std::int64_t a, std::int64_t b) {
  return CounterRng(seed).normal(Stream::image, static_cast<std::uint32_t>(a), static_cast<std::uint32_t>(b));
}

// Random points with duplicates: point 7 repeats point 3, and point 12 repeats point 3 too (ties).
double messy(std::int64_t c, std::int64_t p) {
  if (p == 7 || p == 12) p = 3;
  return gaussian(5, c, p) + 0.5;
}

class DimensionTest : public ::testing::Test {
 protected:
  Context ctx{MPI_COMM_WORLD};
};

TEST_F(DimensionTest, KnnEqualsBruteForceForEveryMetric) {
  const std::int64_t dims = 23, n = 61, k = 6;
  const Matrix block = local_points(ctx, dims, n, messy);
  for (const auto& [metric, products] : {std::pair{KnnMetric::euclidean, KnnProducts::float32},
                                         std::pair{KnnMetric::cosine, KnnProducts::float32},
                                         std::pair{KnnMetric::correlation, KnnProducts::float32},
                                         std::pair{KnnMetric::euclidean, KnnProducts::float64},
                                         std::pair{KnnMetric::cosine, KnnProducts::float64},
                                         std::pair{KnnMetric::correlation, KnnProducts::float64}}) {
    SCOPED_TRACE(std::string(knn_metric_name(metric)) + " " + knn_products_name(products));
    const KnnGraph g = knn_graph(ctx, block, k, metric, /*tile=*/7, {}, products);
    // Brute force: every pairwise distance from its definition.
    std::vector<std::vector<double>> x(static_cast<std::size_t>(n), std::vector<double>(dims));
    for (std::int64_t p = 0; p < n; ++p)
      for (std::int64_t c = 0; c < dims; ++c) x[static_cast<std::size_t>(p)][static_cast<std::size_t>(c)] = messy(c, p);
    const auto distance = [&](std::int64_t a, std::int64_t b) {
      std::vector<double> u = x[static_cast<std::size_t>(a)], v = x[static_cast<std::size_t>(b)];
      if (metric == KnnMetric::correlation) {
        double mu = 0, mv = 0;
        for (std::int64_t c = 0; c < dims; ++c) {
          mu += u[static_cast<std::size_t>(c)] / dims;
          mv += v[static_cast<std::size_t>(c)] / dims;
        }
        for (std::int64_t c = 0; c < dims; ++c) {
          u[static_cast<std::size_t>(c)] -= mu;
          v[static_cast<std::size_t>(c)] -= mv;
        }
      }
      double uv = 0, uu = 0, vv = 0, dd = 0;
      for (std::int64_t c = 0; c < dims; ++c) {
        const double a1 = u[static_cast<std::size_t>(c)], b1 = v[static_cast<std::size_t>(c)];
        uv += a1 * b1;
        uu += a1 * a1;
        vv += b1 * b1;
        dd += (a1 - b1) * (a1 - b1);
      }
      return metric == KnnMetric::euclidean ? std::sqrt(dd) : 1.0 - uv / std::sqrt(uu * vv);
    };
    for (std::int64_t i = 0; i < n; ++i) {
      std::vector<std::pair<double, std::int64_t>> all;
      for (std::int64_t j = 0; j < n; ++j)
        if (j != i) all.push_back({distance(i, j), j});
      std::stable_sort(all.begin(), all.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
      std::vector<std::int64_t> seen;
      for (std::int64_t c = 0; c < k; ++c) {
        EXPECT_NEAR(g.dist(i, c), all[static_cast<std::size_t>(c)].first, 1e-12) << "point " << i << " rank " << c;
        // The neighbour is the brute force's, or, where the brute force ties exactly (the duplicates 3, 7,
        // 12), one of the tied points: popcode's products for tied pairs may come from different block
        // reductions and differ in the last bit, so the tie can break either way.
        const std::int64_t j = g.neighbour(i, c);
        EXPECT_TRUE(j == all[static_cast<std::size_t>(c)].second ||
                    std::abs(distance(i, j) - all[static_cast<std::size_t>(c)].first) <= 1e-13)
            << "point " << i << " rank " << c << ": " << j << " instead of " << all[static_cast<std::size_t>(c)].second;
        EXPECT_EQ(std::count(seen.begin(), seen.end(), j), 0) << "point " << i << " lists " << j << " twice";
        seen.push_back(j);
      }
    }
  }
}

// Cosine distances from point 0 that differ by 1e-9, all 39 within one single-precision step of 0.5 (6e-8):
// single-precision products misorder them (checked: with a zero error bound this test fails), so the float32
// mode must keep them all as candidates and order them in double.
TEST_F(DimensionTest, Float32ProductsOrderDistancesSinglePrecisionCannotTellApart) {
  const std::int64_t dims = 2100, n = 40, k = 10;  // 2,100 neurons: more than one 2,048-neuron run at 1 rank
  const auto unit = [&](std::uint64_t seed, std::int64_t p, const std::vector<double>* against) {
    std::vector<double> v(static_cast<std::size_t>(dims));
    for (std::int64_t c = 0; c < dims; ++c) v[static_cast<std::size_t>(c)] = gaussian(seed, c, p);
    if (against) {  // Gram-Schmidt: the part orthogonal to `against`
      double dot = 0;
      for (std::size_t c = 0; c < v.size(); ++c) dot += v[c] * (*against)[c];
      for (std::size_t c = 0; c < v.size(); ++c) v[c] -= dot * (*against)[c];
    }
    double norm2 = 0;
    for (double x : v) norm2 += x * x;
    for (double& x : v) x /= std::sqrt(norm2);
    return v;
  };
  // Point p > 0 at cosine distance 0.5 + rank(p) * 1e-9 from point 0, the ranks a permutation of 1 .. n - 1.
  const std::vector<double> e = unit(11, 0, nullptr);
  const auto rank = [&](std::int64_t p) { return (p * 17) % (n - 1) + 1; };
  const auto cosine_distance = [&](std::int64_t p) { return 0.5 + static_cast<double>(rank(p)) * 1e-9; };
  std::vector<double> x(static_cast<std::size_t>(dims * n));
  for (std::int64_t p = 0; p < n; ++p) {
    const double cos = p == 0 ? 1.0 : 1.0 - cosine_distance(p);
    // The directions of the points p > 0 cluster around one (cosine distances ~1e-4 among them), so that
    // each one's k nearest are others of them: the pairs with point 0 are candidates through point 0 alone.
    std::vector<double> w = unit(12, 0, &e);
    const std::vector<double> jitter = unit(13, p, &e);
    for (std::size_t c = 0; c < w.size(); ++c) w[c] += 0.01 * jitter[c];
    double w2 = 0;
    for (double v : w) w2 += v * v;
    for (double& v : w) v /= std::sqrt(w2);
    for (std::int64_t c = 0; c < dims; ++c)
      x[static_cast<std::size_t>(p * dims + c)] =
          3.0 * (cos * e[static_cast<std::size_t>(c)] + std::sqrt(1 - cos * cos) * w[static_cast<std::size_t>(c)]);
  }
  std::vector<std::int64_t> expected(static_cast<std::size_t>(n - 1));
  for (std::int64_t p = 1; p < n; ++p) expected[static_cast<std::size_t>(rank(p) - 1)] = p;
  const Matrix block = local_points(ctx, dims, n, [&](std::int64_t c, std::int64_t p) { return x[static_cast<std::size_t>(p * dims + c)]; });
  const KnnGraph g32 = knn_graph(ctx, block, k, KnnMetric::cosine, /*tile=*/16, {}, KnnProducts::float32);
  const KnnGraph g64 = knn_graph(ctx, block, k, KnnMetric::cosine, /*tile=*/16, {}, KnnProducts::float64);
  for (std::int64_t c = 0; c < k; ++c) {
    EXPECT_EQ(g32.neighbour(0, c), expected[static_cast<std::size_t>(c)]) << "rank " << c;
    EXPECT_NEAR(g32.dist(0, c), cosine_distance(expected[static_cast<std::size_t>(c)]), 1e-14) << "rank " << c;
  }
  EXPECT_EQ(g32.index, g64.index);
  for (std::size_t i = 0; i < g32.distance.size(); ++i) ASSERT_NEAR(g32.distance[i], g64.distance[i], 1e-14) << "entry " << i;
  // Every pair with point 0 is within single precision's reach of the k-th, so all were re-ranked.
  EXPECT_GE(g32.rechecked_pairs, n - 1);
  EXPECT_EQ(g64.rechecked_pairs, 0);
}

// The float32 mode's distances are its double re-ranking's, bitwise: a plain scalar reference with the
// documented summation order (8 running sums over the whole multiples of 8, added pairwise, then the tail)
// gives the same bits. The re-ranking is compiled for AVX2 and AVX-512 too; this fails if a version fused a
// multiply-add or reordered the sums (checked: it fails with -ffp-contract=off dropped from knn.cpp).
TEST_F(DimensionTest, Float32DistancesAreTheDocumentedDoubleSumsBitwise) {
  if (ctx.size() != 1) GTEST_SKIP() << "the reference sums all neurons on one rank; ranks add their partial sums";
  const std::int64_t dims = 37, n = 50, k = 5;  // 37 neurons: four blocks of 8 and a tail of 5
  const Matrix block = local_points(ctx, dims, n, messy);
  const auto dot8 = [&](const std::vector<double>& u, const std::vector<double>& v) {
    double s[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    std::int64_t r = 0;
    for (; r + 8 <= dims; r += 8)
      for (int l = 0; l < 8; ++l) s[l] += u[static_cast<std::size_t>(r + l)] * v[static_cast<std::size_t>(r + l)];
    const double t[4] = {s[0] + s[4], s[1] + s[5], s[2] + s[6], s[3] + s[7]};
    double d = (t[0] + t[1]) + (t[2] + t[3]);
    for (; r < dims; ++r) d += u[static_cast<std::size_t>(r)] * v[static_cast<std::size_t>(r)];
    return d;
  };
  for (KnnMetric metric : {KnnMetric::euclidean, KnnMetric::cosine}) {
    SCOPED_TRACE(knn_metric_name(metric));
    std::vector<std::vector<double>> x(static_cast<std::size_t>(n), std::vector<double>(static_cast<std::size_t>(dims)));
    for (std::int64_t c = 0; c < dims; ++c) {
      double mean = 0;  // euclidean: centred over points, the mean summed in point order
      for (std::int64_t p = 0; p < n; ++p) mean += block(c, p);
      mean /= static_cast<double>(n);
      for (std::int64_t p = 0; p < n; ++p)
        x[static_cast<std::size_t>(p)][static_cast<std::size_t>(c)] = metric == KnnMetric::euclidean ? block(c, p) - mean : block(c, p);
    }
    std::vector<double> norm2(static_cast<std::size_t>(n));
    for (std::int64_t p = 0; p < n; ++p) norm2[static_cast<std::size_t>(p)] = dot8(x[static_cast<std::size_t>(p)], x[static_cast<std::size_t>(p)]);
    if (metric == KnnMetric::cosine)
      for (std::int64_t p = 0; p < n; ++p)
        for (double& v : x[static_cast<std::size_t>(p)]) v *= 1.0 / std::sqrt(norm2[static_cast<std::size_t>(p)]);
    // The default buffers (one chunk of neurons, one batch of pairs) and small ones: chunks of 8 neurons and
    // batches of 7 pairs, so that running sums cross chunks and batches.
    for (const KnnTuning& tuning : {KnnTuning{}, KnnTuning{8 * n * 8, 7}}) {
      SCOPED_TRACE(fmt::format("chunk {} bytes, batch {} pairs", tuning.rerank_chunk_bytes, tuning.rerank_batch_pairs));
      const KnnGraph g = knn_graph(ctx, block, k, metric, /*tile=*/7, {}, KnnProducts::float32, tuning);
      for (std::int64_t i = 0; i < n; ++i)
        for (std::int64_t c = 0; c < k; ++c) {
          const std::int64_t j = g.neighbour(i, c);
          const double dot = dot8(x[static_cast<std::size_t>(i)], x[static_cast<std::size_t>(j)]);
          const double expected =
              metric == KnnMetric::euclidean
                  ? std::sqrt(std::max(0.0, norm2[static_cast<std::size_t>(i)] + norm2[static_cast<std::size_t>(j)] - 2.0 * dot))
                  : std::clamp(1.0 - dot, 0.0, 2.0);
          EXPECT_EQ(g.dist(i, c), expected) << "point " << i << " neighbour " << j;
        }
    }
  }
}

// Values whose single-precision products would underflow (1e-30) or overflow (1e30) without the
// power-of-two scaling: the float32 graph is still the float64 one.
TEST_F(DimensionTest, Float32ProductsScaleTinyAndHugeValues) {
  for (double scale : {1e-30, 1e30}) {
    SCOPED_TRACE(scale);
    const Matrix block = local_points(ctx, 23, 61, [scale](std::int64_t c, std::int64_t p) { return scale * messy(c, p); });
    for (KnnMetric metric : {KnnMetric::euclidean, KnnMetric::cosine}) {
      const KnnGraph g32 = knn_graph(ctx, block, 6, metric, /*tile=*/7, {}, KnnProducts::float32);
      const KnnGraph g64 = knn_graph(ctx, block, 6, metric, /*tile=*/7, {}, KnnProducts::float64);
      const double unit = metric == KnnMetric::euclidean ? scale : 1.0;
      // Unscaled, the products would underflow to 0 or overflow to infinity; the bound still holds then, but
      // every pair becomes a candidate. Scaled, about the k nearest of each point are (61 x 6 pairs at most,
      // fewer as mutual neighbours share a pair), far from all 1,830.
      EXPECT_LT(g32.rechecked_pairs, 61 * 6) << knn_metric_name(metric);
      for (std::size_t i = 0; i < g32.index.size(); ++i) {
        // Duplicates: |x|^2 + |y|^2 - 2 x.y is a rounding error of |x|^2 (1e-16 relative) whose square root is
        // 1e-8 of |x|; elsewhere the two modes differ only in the last bits.
        const bool duplicate = g64.distance[i] / unit < 1e-6;
        ASSERT_NEAR(g32.distance[i] / unit, g64.distance[i] / unit, duplicate ? 1e-6 : 1e-12)
            << knn_metric_name(metric) << " entry " << i;
        // The duplicates (3, 7, 12) tie exactly and may swap; every other neighbour is the same point.
        const std::int64_t a = g32.index[i], b = g64.index[i];
        EXPECT_TRUE(a == b || duplicate) << knn_metric_name(metric) << " entry " << i;
      }
    }
  }
}

// The bad value among 5 neurons, and among 20 at neuron 1 and 18: at 1 rank, in the scan's 8-value lanes
// and in its scalar tail.
TEST_F(DimensionTest, KnnRefusesNonFiniteValues) {
  for (const auto& [dims, at] : {std::pair<std::int64_t, std::int64_t>{5, 4}, {20, 1}, {20, 18}})
    for (double bad : {std::numeric_limits<double>::quiet_NaN(), std::numeric_limits<double>::infinity(),
                       -std::numeric_limits<double>::infinity()}) {
      const Matrix block =
          local_points(ctx, dims, 8, [bad, at](std::int64_t c, std::int64_t p) { return c == at && p == 6 ? bad : messy(c, p); });
      for (KnnProducts products : {KnnProducts::float32, KnnProducts::float64}) {
        try {
          knn_graph(ctx, block, 3, KnnMetric::euclidean, 512, {}, products);
          ADD_FAILURE() << "no error for " << bad << " at neuron " << at << " of " << dims;
        } catch (const InputError& e) {
          EXPECT_NE(std::string(e.what()).find("first: point 6"), std::string::npos) << e.what();
        }
      }
    }
}

TEST_F(DimensionTest, KnnRefusesKAtLeastThePointCountAndZeroNormPoints) {
  const Matrix block = local_points(ctx, 5, 8, messy);
  EXPECT_THROW(knn_graph(ctx, block, 8, KnnMetric::euclidean), InputError);
  const Matrix zero = local_points(ctx, 5, 8, [](std::int64_t c, std::int64_t p) { return p == 2 ? 0.0 : messy(c, p); });
  EXPECT_THROW(knn_graph(ctx, zero, 3, KnnMetric::cosine), InputError);
  EXPECT_NO_THROW(knn_graph(ctx, zero, 3, KnnMetric::euclidean));
}

// All-pairs shortest paths by Floyd-Warshall on the same undirected graph.
std::vector<double> floyd_warshall(const UndirectedGraph& g) {
  const std::int64_t n = g.points;
  std::vector<double> d(static_cast<std::size_t>(n * n), std::numeric_limits<double>::infinity());
  for (std::int64_t i = 0; i < n; ++i) {
    d[static_cast<std::size_t>(i * n + i)] = 0;
    for (std::int64_t e = g.offset[static_cast<std::size_t>(i)]; e < g.offset[static_cast<std::size_t>(i + 1)]; ++e)
      d[static_cast<std::size_t>(i * n + g.target[static_cast<std::size_t>(e)])] = g.weight[static_cast<std::size_t>(e)];
  }
  for (std::int64_t m = 0; m < n; ++m)
    for (std::int64_t i = 0; i < n; ++i)
      for (std::int64_t j = 0; j < n; ++j)
        d[static_cast<std::size_t>(i * n + j)] =
            std::min(d[static_cast<std::size_t>(i * n + j)], d[static_cast<std::size_t>(i * n + m)] + d[static_cast<std::size_t>(m * n + j)]);
  return d;
}

TEST_F(DimensionTest, GeodesicHistogramEqualsFloydWarshallWithTheConnectivityFilter) {
  // 70 points: a cloud of 64 (with duplicates 3 = 7 = 12) and, far away, a separate cloud of 6.
  const std::int64_t n = 70;
  const Matrix block = local_points(ctx, 9, n, [](std::int64_t c, std::int64_t p) {
    return p >= 64 ? 100.0 + gaussian(8, c, p) : messy(c, p);
  });
  const KnnGraph knn = knn_graph(ctx, block, 4, KnnMetric::euclidean, 16);
  const UndirectedGraph g = undirected_knn_graph(knn, 4);
  const std::vector<double> d = floyd_warshall(g);
  // Reference: ID_fit.py's filter (a point reaching more than n/2 others), upper triangle, nonzero.
  std::vector<std::uint8_t> kept(static_cast<std::size_t>(n), 0);
  std::int64_t kept_count = 0;
  for (std::int64_t i = 0; i < n; ++i) {
    std::int64_t reach = 0;
    for (std::int64_t j = 0; j < n; ++j) reach += (j != i && std::isfinite(d[static_cast<std::size_t>(i * n + j)])) ? 1 : 0;
    kept[static_cast<std::size_t>(i)] = 2 * reach > n ? 1 : 0;
    kept_count += kept[static_cast<std::size_t>(i)];
  }
  ASSERT_EQ(kept_count, 64);  // the far cloud of 6 is dropped
  std::vector<double> pairs;
  std::int64_t zero = 0;
  for (std::int64_t i = 0; i < n; ++i)
    for (std::int64_t j = i + 1; j < n; ++j)
      if (kept[static_cast<std::size_t>(i)] && kept[static_cast<std::size_t>(j)]) {
        const double x = d[static_cast<std::size_t>(i * n + j)];
        if (x == 0) {
          ++zero;
        } else {
          pairs.push_back(x);
        }
      }
  EXPECT_EQ(zero, 3);  // {3, 7}, {3, 12}, {7, 12}
  const double lo = *std::min_element(pairs.begin(), pairs.end()), hi = *std::max_element(pairs.begin(), pairs.end());
  for (std::int64_t store : {std::int64_t{1} << 30, std::int64_t{0}}) {
    SCOPED_TRACE(store ? "one pass" : "two passes");
    const GeodesicHistogram h = geodesic_histogram(ctx, g, 12, store);
    EXPECT_EQ(h.stored, store != 0);
    EXPECT_EQ(h.points_kept, 64);
    EXPECT_EQ(h.zero_pairs, zero);
    EXPECT_EQ(h.pairs, static_cast<std::int64_t>(pairs.size()));
    EXPECT_NEAR(h.min, lo, 1e-12 * hi);
    EXPECT_NEAR(h.max, hi, 1e-12 * hi);
    std::vector<std::int64_t> counts(12, 0);
    for (double x : pairs) {
      // Bin by the definition: [e_b, e_b+1), the last bin closed.
      int b = static_cast<int>(std::floor((x - lo) / (hi - lo) * 12));
      counts[static_cast<std::size_t>(std::min(b, 11))]++;
    }
    EXPECT_EQ(h.counts, counts);
  }
}

TEST_F(DimensionTest, DisconnectedGraphIsRefused) {
  // Two equal clouds far apart: no point reaches more than half of the others.
  const Matrix block = local_points(ctx, 4, 40, [](std::int64_t c, std::int64_t p) {
    return (p % 2 ? 1000.0 : 0.0) + gaussian(9, c, p);
  });
  const UndirectedGraph g = undirected_knn_graph(knn_graph(ctx, block, 3, KnnMetric::euclidean), 3);
  try {
    geodesic_histogram(ctx, g, 10);
    FAIL() << "a disconnected graph was accepted";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("highly disconnected"), std::string::npos) << e.what();
  }
}

TEST_F(DimensionTest, GeodesicDistancesEqualAHeapDijkstraWhateverTheBucketWidth) {
  // Edge weights spanning seven orders of magnitude. With buckets wider than the tiny edges, points within a
  // bucket come out of order and are corrected again; with buckets so narrow that distances pass the last of
  // the 4,097, everything is corrected in that one bucket. The distances must be a heap Dijkstra's bit for
  // bit (the same smallest rounded path sums) at every width, and geodesic_histogram's (its own width) too.
  const std::int64_t n = 300;
  std::vector<std::map<std::int64_t, double>> adj(static_cast<std::size_t>(n));
  const auto connect = [&](std::int64_t a, std::int64_t b, double w) {
    if (a == b) return;
    adj[static_cast<std::size_t>(a)][b] = w;
    adj[static_cast<std::size_t>(b)][a] = w;
  };
  for (std::int64_t i = 0; i < n; ++i) {
    const double u = std::abs(gaussian(61, i, 0));
    connect(i, (i + 1) % n, i % 3 == 0 ? 1e-7 * u : u);  // a ring, so the graph is connected
    for (int c = 0; c < 3; ++c)
      connect(i, static_cast<std::int64_t>(std::abs(gaussian(62, i, c)) * 1e6) % n, std::abs(gaussian(63, i, c)));
  }
  UndirectedGraph g;
  g.points = n;
  g.offset.push_back(0);
  for (const auto& a : adj) {
    for (const auto& [j, w] : a) {
      g.target.push_back(j);
      g.weight.push_back(w);
    }
    g.offset.push_back(static_cast<std::int64_t>(g.target.size()));
  }
  std::vector<double> pairs;
  for (std::int64_t s = 0; s < n; ++s) {
    // The reference: Dijkstra on a binary heap, distances summed along the path from the source.
    std::vector<double> d(static_cast<std::size_t>(n), std::numeric_limits<double>::infinity());
    using Entry = std::pair<double, std::int64_t>;
    std::priority_queue<Entry, std::vector<Entry>, std::greater<>> heap;
    d[static_cast<std::size_t>(s)] = 0;
    heap.push({0, s});
    while (!heap.empty()) {
      const auto [dv, v] = heap.top();
      heap.pop();
      if (dv > d[static_cast<std::size_t>(v)]) continue;
      for (const auto& [t, w] : adj[static_cast<std::size_t>(v)])
        if (dv + w < d[static_cast<std::size_t>(t)]) {
          d[static_cast<std::size_t>(t)] = dv + w;
          heap.push({dv + w, t});
        }
    }
    if (s % 30 == 0)
      for (const double width : {1e-12, 1e-7, 0.01, 0.3, 1.0, 1e3}) {
        SCOPED_TRACE(::testing::Message() << "source " << s << ", bucket width " << width);
        EXPECT_EQ(geodesic_distances(g, s, width), d);
      }
    for (std::int64_t t = s + 1; t < n; ++t) pairs.push_back(d[static_cast<std::size_t>(t)]);
  }
  const double lo = *std::min_element(pairs.begin(), pairs.end()), hi = *std::max_element(pairs.begin(), pairs.end());
  EXPECT_LT(lo, 1e-6 * hi);  // the case is the one intended: tiny edges beside large ones
  const std::vector<double> edges = numpy_bin_edges(lo, hi, 40);
  std::vector<std::int64_t> counts(40, 0);
  for (const double x : pairs) ++counts[static_cast<std::size_t>(numpy_bin_index(x, lo, hi, edges))];
  const GeodesicHistogram h = geodesic_histogram(ctx, g, 40);
  EXPECT_EQ(h.pairs, n * (n - 1) / 2);
  EXPECT_EQ(h.min, lo);  // bitwise: the smallest and largest distances themselves
  EXPECT_EQ(h.max, hi);
  EXPECT_EQ(h.counts, counts);
}

TEST_F(DimensionTest, GeodesicGraphInvariantsAreChecked) {
  // The search's branch-free relaxation queues each improved neighbour once, which needs each neighbour listed
  // once; its buckets need finite non-negative weights. A path 0 - 1 - 2 - 3, then broken four ways.
  UndirectedGraph g;
  g.points = 4;
  g.offset = {0, 1, 3, 5, 6};
  g.target = {1, 0, 2, 1, 3, 2};
  g.weight = {1, 1, 2, 2, 3, 3};
  const GeodesicHistogram ok = geodesic_histogram(ctx, g, 6);
  EXPECT_EQ(ok.pairs, 6);
  EXPECT_EQ(ok.max, 6.0);  // 0 -> 3: 1 + 2 + 3
  const auto refused = [&](UndirectedGraph bad, const std::string& what) {
    try {
      geodesic_histogram(ctx, bad, 6);
      ADD_FAILURE() << "accepted a graph with " << what;
    } catch (const InternalError& e) {
      SCOPED_TRACE(e.what());
    }
  };
  UndirectedGraph twice = g;  // point 1 lists point 2 twice (instead of 0)
  twice.target[1] = 2;
  refused(twice, "a neighbour listed twice");
  UndirectedGraph self = g;  // point 1 lists itself
  self.target[1] = 1;
  refused(self, "a self-loop");
  UndirectedGraph negative = g;
  negative.weight[2] = negative.weight[3] = -2;
  refused(negative, "a negative weight");
  UndirectedGraph infinite = g;
  infinite.weight[4] = infinite.weight[5] = std::numeric_limits<double>::infinity();
  refused(infinite, "an infinite weight");
}

// Uniform samples on the unit d-sphere in R^(d+1), placed in `embed` coordinates by a Householder
// reflection (an isometry, so geodesic distances are the sphere's).
double sphere_point(int d, std::int64_t embed, std::int64_t c, std::int64_t p) {
  double norm = 0, vnorm = 0, vx = 0;
  std::vector<double> x(static_cast<std::size_t>(embed), 0.0);
  for (int a = 0; a <= d; ++a) {
    x[static_cast<std::size_t>(a)] = gaussian(20 + d, a, p);
    norm += x[static_cast<std::size_t>(a)] * x[static_cast<std::size_t>(a)];
  }
  for (std::int64_t a = 0; a < embed; ++a) {
    const double v = gaussian(40 + d, a, 0);
    vnorm += v * v;
    vx += v * x[static_cast<std::size_t>(a)];
  }
  const double vc = gaussian(40 + d, c, 0);
  return (x[static_cast<std::size_t>(c)] - 2 * vc * vx / vnorm) / std::sqrt(norm);
}

double gc_dimension(const Context& ctx, const Matrix& block, std::int64_t k) {
  const KnnGraph knn = knn_graph(ctx, block, k, KnnMetric::euclidean);
  const UndirectedGraph g = undirected_knn_graph(knn, k);
  const GeodesicHistogram h = geodesic_histogram(ctx, g, 50);
  return granata_carnevale_fit(h.counts, h.edges, h.mean, h.std, g.max_edge).d_fit;
}

// The sixteen-sources-at-a-time search and the one-source search give the same histogram bit for bit: exact
// and sampled sources, one pass and two, at 1, 2 and 3 ranks (64 kept sources over the ranks, and 20 sampled
// ones: full and part-full batches). Checked: it fails (as do the Floyd-Warshall tests above) when a point is queued
// again only for improvements in its first vector's lanes, or never again once processed.
TEST_F(DimensionTest, BatchedGeodesicSearchEqualsOneSourceAtATime) {
  if (!geodesic_batch_supported()) GTEST_SKIP() << "no AVX-512F on this CPU: the histogram searches one source at a time";
  const std::int64_t n = 70;
  const Matrix block = local_points(ctx, 9, n, [](std::int64_t c, std::int64_t p) {
    return p >= 64 ? 100.0 + gaussian(8, c, p) : messy(c, p);
  });
  const UndirectedGraph g = undirected_knn_graph(knn_graph(ctx, block, 4, KnnMetric::euclidean, 16), 4);
  for (const std::int64_t sources : {std::int64_t{0}, std::int64_t{20}}) {
    GeodesicSampling sampling;
    sampling.sources = sources;
    sampling.seed = 5;
    sampling.groups = 3;
    for (const std::int64_t store : {std::int64_t{1} << 30, std::int64_t{0}}) {
      SCOPED_TRACE(fmt::format("sources {}, store {}", sources, store));
      const GeodesicHistogram a = geodesic_histogram(ctx, g, 15, store, sampling, GeodesicSearch::batched_where_supported);
      const GeodesicHistogram b = geodesic_histogram(ctx, g, 15, store, sampling, GeodesicSearch::one_source);
      EXPECT_EQ(a.counts, b.counts);
      EXPECT_EQ(a.edges, b.edges);
      EXPECT_EQ(a.min, b.min);
      EXPECT_EQ(a.max, b.max);
      EXPECT_EQ(a.mean, b.mean);
      EXPECT_EQ(a.std, b.std);
      EXPECT_EQ(a.pairs, b.pairs);
      EXPECT_EQ(a.zero_pairs, b.zero_pairs);
      EXPECT_EQ(a.count_se, b.count_se);
      EXPECT_EQ(a.group_counts, b.group_counts);
      EXPECT_EQ(a.group_mean, b.group_mean);
      EXPECT_EQ(a.group_std, b.group_std);
    }
  }
}

TEST_F(DimensionTest, SampledSourcesCountTheirPairsAndEstimateTheExactHistogram) {
  // Known answer on the 70-point graph: the sampled histogram holds exactly the pairs (drawn source, other
  // kept point), binned on the range of those pairs; group counts and per-bin errors follow from them.
  const std::int64_t n = 70;
  const Matrix block = local_points(ctx, 9, n, [](std::int64_t c, std::int64_t p) {
    return p >= 64 ? 100.0 + gaussian(8, c, p) : messy(c, p);
  });
  const UndirectedGraph g = undirected_knn_graph(knn_graph(ctx, block, 4, KnnMetric::euclidean, 16), 4);
  const std::vector<double> d = floyd_warshall(g);
  GeodesicSampling sampling;
  sampling.sources = 20;
  sampling.seed = 11;
  sampling.groups = 4;
  for (std::int64_t store : {std::int64_t{1} << 30, std::int64_t{0}}) {
    const GeodesicHistogram h = geodesic_histogram(ctx, g, 12, store, sampling);
    ASSERT_TRUE(h.sampled);
    ASSERT_EQ(h.source_points.size(), 20u);
    std::vector<double> x;
    std::vector<std::size_t> source_of;
    for (std::size_t q = 0; q < h.source_points.size(); ++q) {
      const std::int64_t i = h.source_points[q];
      EXPECT_TRUE(h.kept[static_cast<std::size_t>(i)]);
      for (std::int64_t j = 0; j < n; ++j)
        if (j != i && h.kept[static_cast<std::size_t>(j)] && d[static_cast<std::size_t>(i * n + j)] > 0) {
          x.push_back(d[static_cast<std::size_t>(i * n + j)]);
          source_of.push_back(q);
        }
    }
    const double lo = *std::min_element(x.begin(), x.end()), hi = *std::max_element(x.begin(), x.end());
    EXPECT_NEAR(h.min, lo, 1e-12 * hi);
    EXPECT_NEAR(h.max, hi, 1e-12 * hi);
    EXPECT_EQ(h.pairs, static_cast<std::int64_t>(x.size()));
    std::vector<std::int64_t> counts(12, 0), groups(48, 0);
    std::vector<std::vector<double>> own(20, std::vector<double>(12, 0.0));
    for (std::size_t t = 0; t < x.size(); ++t) {
      const auto b = static_cast<std::size_t>(numpy_bin_index(x[t], h.min, h.max, h.edges));
      ++counts[b];
      ++groups[(source_of[t] % 4) * 12 + b];
      own[source_of[t]][b] += 1;
    }
    EXPECT_EQ(h.counts, counts);
    EXPECT_EQ(h.group_counts, groups);
    EXPECT_DOUBLE_EQ(h.scale, 64.0 / 40.0);
    for (std::size_t b = 0; b < 12; ++b) {
      double m1 = 0, m2 = 0;
      for (const auto& o : own) m1 += o[b] / 20;
      for (const auto& o : own) m2 += (o[b] - m1) * (o[b] - m1) / 19;
      EXPECT_NEAR(h.count_se[b], 32.0 * std::sqrt(m2 / 20) * std::sqrt(1 - 20.0 / 64.0), 1e-9 * (1 + h.count_se[b])) << b;
    }
  }
  // Statistics on 1,500 points of a 2-sphere: 300 sampled sources estimate the exact counts within their errors.
  const std::int64_t embed = 20;
  const Matrix sphere = local_points(ctx, embed, 1500, [&](std::int64_t c, std::int64_t p) { return sphere_point(2, embed, c, p); });
  const UndirectedGraph sg = undirected_knn_graph(knn_graph(ctx, sphere, 9, KnnMetric::euclidean), 9);
  const GeodesicHistogram exact = geodesic_histogram(ctx, sg, 30);
  sampling.sources = 300;
  sampling.groups = 10;
  const GeodesicHistogram est = geodesic_histogram(ctx, sg, 30, std::int64_t{1} << 30, sampling);
  // The sampled range lies inside the exact one; compare in the exact bins by re-binning the estimate's
  // bin centres would blur it, so compare the total and the mean instead, then the bins on a common range.
  EXPECT_NEAR(est.scale * static_cast<double>(est.pairs), static_cast<double>(exact.pairs), 1e-9 * static_cast<double>(exact.pairs));
  EXPECT_NEAR(est.mean, exact.mean, 0.02 * exact.mean);
  int within = 0, compared = 0;
  std::vector<double> exact_on_est(30, 0.0);
  {
    // Exact pair distances binned on the sampled histogram's edges (pairs outside its range left out).
    GeodesicSampling all;
    const GeodesicHistogram again = geodesic_histogram(ctx, sg, 3000, std::int64_t{1} << 30, all);
    for (std::size_t b = 0; b < again.counts.size(); ++b) {
      const double centre = 0.5 * (again.edges[b] + again.edges[b + 1]);
      if (centre < est.min || centre > est.max) continue;
      exact_on_est[static_cast<std::size_t>(numpy_bin_index(centre, est.min, est.max, est.edges))] +=
          static_cast<double>(again.counts[b]);
    }
  }
  for (std::size_t b = 0; b < 30; ++b) {
    if (est.count_se[b] <= 0) continue;
    ++compared;
    within += std::abs(est.scale * static_cast<double>(est.counts[b]) - exact_on_est[b]) <= 4 * est.count_se[b] + 0.01 * exact_on_est[b] ? 1 : 0;
  }
  EXPECT_GE(within, compared * 9 / 10) << within << " of " << compared << " bins within 4 standard errors";
}

TEST_F(DimensionTest, GranataCarnevaleFitRecoversSpheresFromExactGeodesics) {
  // The fit alone, on the exact great-circle distances of uniform samples: its model is this distribution.
  const std::int64_t n = 1500;
  for (int d : {2, 5, 10}) {
    std::vector<std::vector<double>> x(static_cast<std::size_t>(n));
    for (std::int64_t p = 0; p < n; ++p)
      for (int c = 0; c <= d; ++c) x[static_cast<std::size_t>(p)].push_back(sphere_point(d, d + 1, c, p));
    std::vector<double> r;
    for (std::int64_t i = 0; i < n; ++i)
      for (std::int64_t j = i + 1; j < n; ++j) {
        double dot = 0;
        for (int c = 0; c <= d; ++c) dot += x[static_cast<std::size_t>(i)][static_cast<std::size_t>(c)] * x[static_cast<std::size_t>(j)][static_cast<std::size_t>(c)];
        r.push_back(std::acos(std::clamp(dot, -1.0, 1.0)));
      }
    const double lo = *std::min_element(r.begin(), r.end()), hi = *std::max_element(r.begin(), r.end());
    const std::vector<double> edges = numpy_bin_edges(lo, hi, 50);
    std::vector<std::int64_t> counts(50, 0);
    double sum = 0, sum2 = 0;
    for (double v : r) {
      counts[static_cast<std::size_t>(numpy_bin_index(v, lo, hi, edges))]++;
      sum += v;
      sum2 += v * v;
    }
    const double mean = sum / static_cast<double>(r.size());
    const GcFit f = granata_carnevale_fit(counts, edges, mean, std::sqrt(sum2 / static_cast<double>(r.size()) - mean * mean), 0.0);
    if (ctx.root()) std::printf("  %d-sphere, exact geodesics of %ld points: D_fit %.3f, D_min %ld\n", d, static_cast<long>(n), f.d_fit,
                                static_cast<long>(f.d_min));
    EXPECT_NEAR(f.d_fit, d, 0.02 * d);
    EXPECT_EQ(f.d_min, d);
  }
}

TEST_F(DimensionTest, GranataCarnevaleOnTheKnnGraphRecoversTheTwoSphere) {
  // The whole procedure (kNN graph geodesics). Graph paths lengthen long distances, which raises D on
  // sparse samples of higher-dimensional spheres: with 1,500 points and k = 9 the anchor's own code
  // (sklearn kneighbors_graph + scipy shortest paths + ID_fit.py) gives 6.3 for the 5-sphere and fails its
  // fit for the 10-sphere; popcode equals it (tests/peer/test_dimension_peer.py), so those are not planted
  // here as passes.
  const std::int64_t embed = 40;
  const Matrix two = local_points(ctx, embed, 1500, [&](std::int64_t c, std::int64_t p) { return sphere_point(2, embed, c, p); });
  const double d2 = gc_dimension(ctx, two, 9);
  const Matrix five = local_points(ctx, embed, 1500, [&](std::int64_t c, std::int64_t p) { return sphere_point(5, embed, c, p); });
  const double d5 = gc_dimension(ctx, five, 9);
  if (ctx.root()) std::printf("  kNN graph (k = 9, 1500 points): 2-sphere D_fit %.3f, 5-sphere D_fit %.3f\n", d2, d5);
  EXPECT_NEAR(d2, 2.0, 0.2);
  EXPECT_GT(d5, 5.0);  // the known upward bias, not a pass at 10%
  EXPECT_LT(d5, 7.0);
}

TEST_F(DimensionTest, GranataCarnevaleOnTheKnnGraphRecoversFlatGaussianClouds) {
  // Planted flat manifolds: standard normal clouds in d of 30 coordinates (the rest zero), the whole
  // procedure at the seed article's k = 9. bench/dimension/planted.py measured the anchor's procedure on such
  // clouds over five seeds: 5.02-5.35 for d = 5 at 1,500 points, 9.49-9.86 for d = 10 at 3,000 (9.19-9.48 at
  // 2,000), so 10% holds with room at these sizes. A 2-d Gaussian is not planted: its outliers make the
  // largest kNN distance exceed the histogram's peak, and the stage refuses that fit (the anchor returns an
  // arbitrary number there).
  for (const auto& [d, n] : {std::pair<int, std::int64_t>{5, 1500}, std::pair<int, std::int64_t>{10, 3000}}) {
    const Matrix cloud = local_points(ctx, 30, n, [d = d](std::int64_t c, std::int64_t p) {
      return c < d ? gaussian(70 + static_cast<std::uint64_t>(d), c, p) : 0.0;
    });
    const double dim = gc_dimension(ctx, cloud, 9);
    if (ctx.root()) std::printf("  kNN graph (k = 9, %ld points): %d-d Gaussian cloud D_fit %.3f\n", static_cast<long>(n), d, dim);
    EXPECT_NEAR(dim, d, 0.1 * d);
  }
}

TEST_F(DimensionTest, TwoNnAndLevinaBickelRecoverTheDimensionOfSpheres) {
  for (int d : {2, 5}) {
    const Matrix block = local_points(ctx, 30, 1500, [&](std::int64_t c, std::int64_t p) { return sphere_point(d, 30, c, p); });
    const KnnGraph knn = knn_graph(ctx, block, 20, KnnMetric::euclidean);
    const double twonn = two_nn(knn).d_fit, mle = levina_bickel(knn, 20).d;
    if (ctx.root()) std::printf("  uniform %d-sphere: TwoNN %.3f, Levina-Bickel %.3f\n", d, twonn, mle);
    EXPECT_NEAR(twonn, d, 0.15 * d);
    EXPECT_NEAR(mle, d, 0.15 * d);
  }
}

TEST_F(DimensionTest, NumpyBinningCorrectsRoundingAtEdges) {
  const std::vector<double> e = numpy_bin_edges(0.1, 0.7, 3);
  EXPECT_EQ(numpy_bin_index(0.1, 0.1, 0.7, e), 0);
  EXPECT_EQ(numpy_bin_index(0.7, 0.1, 0.7, e), 2);  // last bin closed
  for (int b = 1; b < 3; ++b) {
    EXPECT_EQ(numpy_bin_index(e[static_cast<std::size_t>(b)], 0.1, 0.7, e), b);  // an edge opens its bin
    EXPECT_EQ(numpy_bin_index(std::nextafter(e[static_cast<std::size_t>(b)], 0.0), 0.1, 0.7, e), b - 1);
  }
}

}  // namespace
}  // namespace popcode
