#include "solvers/knn.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <limits>
#include <cmath>
#include <utility>

#include "solvers/dense.hpp"
#include "src/progress.hpp"

namespace popcode {

namespace {

// The k nearest of every point seen so far, ordered by (distance, index): ties go to the lower index, and
// the order is total, so merging partial lists in any order gives the same result.
class TopK {
 public:
  struct Entry {
    double distance;
    std::int64_t index;
    bool operator<(const Entry& o) const { return distance < o.distance || (distance == o.distance && index < o.index); }
  };
  TopK(std::int64_t points, std::int64_t k)
      : k_(k), entries_(static_cast<std::size_t>(points * k), Entry{std::numeric_limits<double>::infinity(), kEmpty}) {}

  // A max-heap per point while offering; sorted by merge().
  void offer(std::int64_t point, double d, std::int64_t index) {
    Entry* h = list(point);
    const Entry e{d, index};
    if (!(e < h[0])) return;  // not better than the worst kept (the heap top)
    std::pop_heap(h, h + k_);
    h[k_ - 1] = e;
    std::push_heap(h, h + k_);
  }

  // Collective: sorts each list and merges the lists of all ranks (an allreduce with a merging operator).
  void merge(const Context& ctx) {
    const auto points = static_cast<std::int64_t>(entries_.size()) / k_;
    for (std::int64_t i = 0; i < points; ++i) std::sort_heap(list(i), list(i) + k_);
    if (ctx.size() == 1) return;
    MPI_Datatype one_list;
    mpi_check(MPI_Type_contiguous(static_cast<int>(k_ * static_cast<std::int64_t>(sizeof(Entry))), MPI_BYTE, &one_list),
              "MPI_Type_contiguous");
    mpi_check(MPI_Type_commit(&one_list), "MPI_Type_commit");
    MPI_Op op;
    mpi_check(MPI_Op_create(&merge_lists, /*commute=*/1, &op), "MPI_Op_create");
    merging_k = k_;
    const int rc = MPI_Allreduce(MPI_IN_PLACE, entries_.data(), static_cast<int>(points), one_list, op, ctx.comm());
    MPI_Op_free(&op);
    MPI_Type_free(&one_list);
    mpi_check(rc, "MPI_Allreduce(top-k merge)");
  }

  const Entry* sorted(std::int64_t point) const { return entries_.data() + point * k_; }

 private:
  static constexpr std::int64_t kEmpty = std::numeric_limits<std::int64_t>::max();
  static inline std::int64_t merging_k = 0;  // the list length the MPI operator sees (one merge at a time)

  // inout[i] <- the k smallest of in[i] and inout[i], both sorted.
  static void merge_lists(void* in, void* inout, int* len, MPI_Datatype*) {
    const std::int64_t k = merging_k;
    std::vector<Entry> merged(static_cast<std::size_t>(k));
    for (int p = 0; p < *len; ++p) {
      const Entry* x = static_cast<const Entry*>(in) + p * k;
      Entry* y = static_cast<Entry*>(inout) + p * k;
      std::int64_t u = 0, v = 0;
      for (std::int64_t c = 0; c < k; ++c) merged[static_cast<std::size_t>(c)] = (y[v] < x[u]) ? y[v++] : x[u++];
      std::copy(merged.begin(), merged.end(), y);
    }
  }

  Entry* list(std::int64_t point) { return entries_.data() + point * k_; }
  std::int64_t k_;
  std::vector<Entry> entries_;
};

}  // namespace

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

KnnGraph knn_graph(const Context& ctx, Matrix points, std::int64_t k, KnnMetric metric, std::int64_t tile,
                   const GramBlockVisitor& visit) {
  const std::int64_t s = points.cols(), n_local = points.rows();
  ctx.agree(k < 1 || k >= s,
            fmt::format("kNN graph: k = {} needs 1 <= k < number of points ({})", k, s), ExitCode::bad_input);
  tile = std::max<std::int64_t>(1, std::min(tile, s));

  // The points in the metric's space: centred over points (euclidean), centred over neurons (correlation), unit norm
  // (cosine, correlation). Squared norms are sums over neurons.
  Matrix& centred = points;  // transformed in place (the caller moves in a copy it no longer needs)
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

  // Running top-k of every point, on every rank: the pairs of the blocks this rank reduced.
  TopK top(s, k);
  const std::int64_t tiles = (s + tile - 1) / tile;
  const std::int64_t blocks = tiles * (tiles + 1) / 2;
  Matrix partial(tile, tile), summed(tile, tile);
  const auto distance = [&](std::int64_t i, std::int64_t j, double dot) {
    return metric == KnnMetric::euclidean
               ? std::sqrt(std::max(0.0, norm2[static_cast<std::size_t>(i)] + norm2[static_cast<std::size_t>(j)] - 2.0 * dot))
               : std::clamp(1.0 - dot, 0.0, 2.0);  // sklearn clips cosine distances to [0, 2]
  };
  Progress progress(fmt::format("kNN graph ({} points, k = {}, {}, {} blocks)", s, k, knn_metric_name(metric), blocks),
                    static_cast<std::size_t>(blocks));
  std::int64_t q = 0;
  for (std::int64_t a = 0; a < tiles; ++a) {
    for (std::int64_t b = a; b < tiles; ++b, ++q) {
      // Block (a, b) of the upper triangle: its partial products over this rank's neurons, summed onto
      // the block's root; each distance then serves both of its points.
      const std::int64_t fa = a * tile, ra = std::min(tile, s - fa), fb = b * tile, rb = std::min(tile, s - fb);
      const int root = static_cast<int>(q % ctx.size());
      if (n_local > 0) {
        gemm_raw(Trans::yes, Trans::no, ra, rb, n_local, 1.0, x->data() + fa * n_local, n_local, x->data() + fb * n_local,
                 n_local, 0.0, partial.data(), ra);
      } else {
        std::fill(partial.data(), partial.data() + ra * rb, 0.0);
      }
      mpi_check(MPI_Reduce(partial.data(), summed.data(), static_cast<int>(ra * rb), MPI_DOUBLE, MPI_SUM, root, ctx.comm()),
                "MPI_Reduce");
      if (ctx.rank() == root) {
        if (visit) visit(fa, ra, fb, rb, summed.data());
        for (std::int64_t jj = 0; jj < rb; ++jj) {
          const std::int64_t j = fb + jj;
          for (std::int64_t ii = 0; ii < (a == b ? jj : ra); ++ii) {  // the diagonal block: each pair once
            const std::int64_t i = fa + ii;
            const double d = distance(i, j, summed.data()[ii + jj * ra]);
            top.offer(i, d, j);
            top.offer(j, d, i);
          }
        }
      }
      progress.advance();
    }
  }
  progress.finish();
  top.merge(ctx);

  KnnGraph g;
  g.points = s;
  g.k = k;
  g.index.resize(static_cast<std::size_t>(s * k));
  g.distance.resize(static_cast<std::size_t>(s * k));
  for (std::int64_t i = 0; i < s; ++i)
    for (std::int64_t c = 0; c < k; ++c) {
      const TopK::Entry& e = top.sorted(i)[static_cast<std::size_t>(c)];
      g.index[static_cast<std::size_t>(i * k + c)] = e.index;
      g.distance[static_cast<std::size_t>(i * k + c)] = e.distance;
    }
  return g;
}

}  // namespace popcode
