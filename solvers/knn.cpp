#include "solvers/knn.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <utility>

#include "solvers/dense.hpp"
#include "src/progress.hpp"

namespace popcode {

KnnMetric parse_knn_metric(const std::string& name) {
  if (name == "euclidean") return KnnMetric::euclidean;
  if (name == "cosine") return KnnMetric::cosine;
  if (name == "correlation") return KnnMetric::correlation;
  throw UsageError(fmt::format("unknown metric '{}' (expected euclidean, cosine or correlation)", name));
}

const char* knn_metric_name(KnnMetric m) {
  switch (m) {
    case KnnMetric::euclidean: return "euclidean";
    case KnnMetric::cosine: return "cosine";
    case KnnMetric::correlation: return "correlation";
  }
  return "?";
}

KnnGraph knn_graph(const Context& ctx, const Matrix& points, std::int64_t k, KnnMetric metric, std::int64_t tile,
                   const GramTileVisitor& visit) {
  const std::int64_t s = points.cols(), n_local = points.rows();
  ctx.agree(k < 1 || k >= s,
            fmt::format("kNN graph: k = {} needs 1 <= k < number of points ({})", k, s), ExitCode::bad_input);
  tile = std::max<std::int64_t>(1, std::min(tile, s));

  // The points in the metric's space: centred over points (euclidean), centred over neurons (correlation), unit norm
  // (cosine, correlation). Squared norms are sums over neurons.
  Matrix centred = points;
  const Matrix* x = &centred;
  if (metric == KnnMetric::euclidean) {
    // Distances do not change when every point moves by the same vector; centring the points over
    // points (a per-neuron mean, local) keeps the Gram-based distances accurate for far-off clouds.
    for (std::int64_t i = 0; i < n_local; ++i) {
      double mean = 0;
      for (std::int64_t j = 0; j < s; ++j) mean += centred(i, j);
      mean /= static_cast<double>(s);
      for (std::int64_t j = 0; j < s; ++j) centred(i, j) -= mean;
    }
  } else {
    if (metric == KnnMetric::correlation) {
      std::vector<double> mean(static_cast<std::size_t>(s), 0.0);
      for (std::int64_t j = 0; j < s; ++j)
        for (double v : centred.col(j)) mean[static_cast<std::size_t>(j)] += v;
      ctx.allreduce_sum(mean);
      const double n_total = static_cast<double>(ctx.sum(n_local));
      for (std::int64_t j = 0; j < s; ++j)
        for (double& v : centred.col(j)) v -= mean[static_cast<std::size_t>(j)] / n_total;
    }
  }
  std::vector<double> norm2(static_cast<std::size_t>(s), 0.0);
  for (std::int64_t j = 0; j < s; ++j)
    for (double v : x->col(j)) norm2[static_cast<std::size_t>(j)] += v * v;
  ctx.allreduce_sum(norm2);
  if (metric != KnnMetric::euclidean) {
    std::int64_t zero = 0, first_zero = -1;
    for (std::int64_t j = 0; j < s; ++j)
      if (!(norm2[static_cast<std::size_t>(j)] > 0)) {
        if (zero++ == 0) first_zero = j;
      }
    ctx.agree(zero > 0,
              fmt::format("kNN graph: {} of {} points have zero {} (first: point {}); the {} distance is undefined for "
                          "them",
                          zero, s, metric == KnnMetric::correlation ? "variance over neurons" : "norm", first_zero,
                          knn_metric_name(metric)),
              ExitCode::bad_input);
    for (std::int64_t j = 0; j < s; ++j) {
      const double inv = 1.0 / std::sqrt(norm2[static_cast<std::size_t>(j)]);
      for (double& v : centred.col(j)) v *= inv;
    }
  }

  KnnGraph g;
  g.points = s;
  g.k = k;
  g.index.assign(static_cast<std::size_t>(s * k), 0);
  g.distance.assign(static_cast<std::size_t>(s * k), 0.0);
  const std::int64_t tiles = (s + tile - 1) / tile;
  Matrix partial(tile, s), summed(tile, s);
  std::vector<std::pair<double, std::int64_t>> row(static_cast<std::size_t>(s - 1));
  Progress progress(fmt::format("kNN graph ({} points, k = {}, {})", s, k, knn_metric_name(metric)),
                    static_cast<std::size_t>(tiles));
  for (std::int64_t t = 0; t < tiles; ++t) {
    const std::int64_t first = t * tile, rows = std::min(tile, s - first);
    const int owner = static_cast<int>(t % ctx.size());
    if (n_local > 0) {
      gemm_raw(Trans::yes, Trans::no, rows, s, n_local, 1.0, x->data() + first * n_local, n_local, x->data(), n_local, 0.0,
               partial.data(), rows);
    } else {
      std::fill(partial.data(), partial.data() + rows * s, 0.0);
    }
    mpi_check(MPI_Reduce(partial.data(), summed.data(), static_cast<int>(rows * s), MPI_DOUBLE, MPI_SUM, owner, ctx.comm()),
              "MPI_Reduce");
    if (ctx.rank() == owner) {
      if (visit) visit(first, rows, s, summed.data());
      for (std::int64_t q = 0; q < rows; ++q) {
        const std::int64_t i = first + q;
        std::size_t m = 0;
        for (std::int64_t j = 0; j < s; ++j) {
          if (j == i) continue;
          const double dot = summed.data()[q + j * rows];
          const double d = metric == KnnMetric::euclidean
                               ? std::sqrt(std::max(0.0, norm2[static_cast<std::size_t>(i)] +
                                                             norm2[static_cast<std::size_t>(j)] - 2.0 * dot))
                               : std::clamp(1.0 - dot, 0.0, 2.0);  // sklearn clips cosine distances to [0, 2]
          row[m++] = {d, j};
        }
        // Pairs order by distance, then index: ties go to the lower index.
        std::partial_sort(row.begin(), row.begin() + k, row.end());
        for (std::int64_t c = 0; c < k; ++c) {
          g.index[static_cast<std::size_t>(i * k + c)] = row[static_cast<std::size_t>(c)].second;
          g.distance[static_cast<std::size_t>(i * k + c)] = row[static_cast<std::size_t>(c)].first;
        }
      }
    }
    progress.advance();
  }
  progress.finish();
  // Each row was filled by exactly one rank and is zero elsewhere: a sum replicates the graph.
  ctx.allreduce_sum(g.index);
  ctx.allreduce_sum(g.distance);
  return g;
}

}  // namespace popcode
