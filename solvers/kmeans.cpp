#include "solvers/kmeans.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

#include "solvers/dense.hpp"
#include "src/rng.hpp"

namespace popcode {

namespace {

// Squared norm of every point (replicated).
std::vector<double> squared_norms(const Context& ctx, const Matrix& x) {
  std::vector<double> n2(static_cast<std::size_t>(x.cols()), 0.0);
  for (std::int64_t s = 0; s < x.cols(); ++s)
    for (double v : x.col(s)) n2[static_cast<std::size_t>(s)] += v * v;
  ctx.allreduce_sum(n2);
  return n2;
}

// Inner products of every point with the columns of `c` (this rank's rows), summed over ranks: S x c.cols().
Matrix products(const Context& ctx, const Matrix& x, const Matrix& c) {
  Matrix p(x.cols(), c.cols());
  if (x.rows() > 0 && c.cols() > 0)
    gemm_raw(Trans::yes, Trans::no, x.cols(), c.cols(), x.rows(), 1.0, x.data(), x.rows(), c.data(), c.rows(), 0.0, p.data(),
             p.rows());
  ctx.allreduce_sum(p.values());
  return p;
}

// This rank's rows of the listed points, as columns.
Matrix gather_points(const Matrix& x, const std::vector<std::int64_t>& ids) {
  Matrix c(x.rows(), static_cast<std::int64_t>(ids.size()));
  for (std::size_t j = 0; j < ids.size(); ++j) std::copy_n(x.col(ids[j]).data(), x.rows(), c.col(static_cast<std::int64_t>(j)).data());
  return c;
}

// Greedy k-means++ (sklearn's _kmeans_plusplus); returns the chosen points.
std::vector<std::int64_t> kmeans_plusplus(const Context& ctx, const Matrix& x, const std::vector<double>& x2, std::int64_t k,
                                          std::uint64_t seed, int init) {
  const std::int64_t s = x.cols();
  const int trials = 2 + static_cast<int>(std::log(static_cast<double>(k)));
  const CounterRng rng(seed);
  std::vector<std::int64_t> chosen = {
      static_cast<std::int64_t>(rng.below(static_cast<std::uint64_t>(s), Stream::kmeans_init, static_cast<std::uint32_t>(init), 0))};
  std::vector<double> closest(static_cast<std::size_t>(s));
  {
    const Matrix p = products(ctx, x, gather_points(x, chosen));
    const double c2 = x2[static_cast<std::size_t>(chosen[0])];
    for (std::int64_t i = 0; i < s; ++i)
      closest[static_cast<std::size_t>(i)] = std::max(0.0, x2[static_cast<std::size_t>(i)] + c2 - 2 * p(i, 0));
  }
  double potential = std::accumulate(closest.begin(), closest.end(), 0.0);
  for (std::int64_t c = 1; c < k; ++c) {
    std::vector<double> cumulative(static_cast<std::size_t>(s));
    std::partial_sum(closest.begin(), closest.end(), cumulative.begin());
    std::vector<std::int64_t> candidates;
    for (int t = 0; t < trials; ++t) {
      const double u = rng.uniform(Stream::kmeans_init, static_cast<std::uint32_t>(init), static_cast<std::uint32_t>(c),
                                   static_cast<std::uint32_t>(t)) *
                       potential;
      const auto pos = std::lower_bound(cumulative.begin(), cumulative.end(), u) - cumulative.begin();
      candidates.push_back(std::min<std::int64_t>(pos, s - 1));
    }
    const Matrix p = products(ctx, x, gather_points(x, candidates));
    std::int64_t best = -1;
    double best_potential = std::numeric_limits<double>::infinity();
    std::vector<double> best_closest;
    for (int t = 0; t < trials; ++t) {
      const double c2 = x2[static_cast<std::size_t>(candidates[static_cast<std::size_t>(t)])];
      std::vector<double> d(static_cast<std::size_t>(s));
      double pot = 0;
      for (std::int64_t i = 0; i < s; ++i) {
        d[static_cast<std::size_t>(i)] = std::min(closest[static_cast<std::size_t>(i)],
                                                  std::max(0.0, x2[static_cast<std::size_t>(i)] + c2 - 2 * p(i, t)));
        pot += d[static_cast<std::size_t>(i)];
      }
      if (pot < best_potential) {
        best_potential = pot;
        best = t;
        best_closest = std::move(d);
      }
    }
    chosen.push_back(candidates[static_cast<std::size_t>(best)]);
    closest = std::move(best_closest);
    potential = best_potential;
  }
  return chosen;
}

struct Assignment {
  std::vector<std::int32_t> labels;
  std::vector<double> own;  // squared distance of each point to its centre
};

// Nearest centre of every point (ties to the lower centre), from the replicated products.
Assignment assign(const Context& ctx, const Matrix& x, const std::vector<double>& x2, const Matrix& centres) {
  const Matrix p = products(ctx, x, centres);
  std::vector<double> c2(static_cast<std::size_t>(centres.cols()), 0.0);
  for (std::int64_t j = 0; j < centres.cols(); ++j)
    for (double v : centres.col(j)) c2[static_cast<std::size_t>(j)] += v * v;
  ctx.allreduce_sum(c2);
  Assignment a;
  a.labels.resize(static_cast<std::size_t>(x.cols()));
  a.own.resize(static_cast<std::size_t>(x.cols()));
  for (std::int64_t i = 0; i < x.cols(); ++i) {
    std::int32_t best = 0;
    double best_value = std::numeric_limits<double>::infinity();
    for (std::int64_t j = 0; j < centres.cols(); ++j) {
      const double v = c2[static_cast<std::size_t>(j)] - 2 * p(i, j);  // |x|^2 left out, as sklearn
      if (v < best_value) {
        best_value = v;
        best = static_cast<std::int32_t>(j);
      }
    }
    a.labels[static_cast<std::size_t>(i)] = best;
    a.own[static_cast<std::size_t>(i)] = std::max(0.0, x2[static_cast<std::size_t>(i)] + best_value);
  }
  return a;
}

// sklearn's tolerance: tol times the mean over coordinates (neurons) of the points' variance.
double absolute_tolerance(const Context& ctx, const Matrix& points, double tol) {
  double var_sum = 0;
  for (double v : row_moments(points).ssd) var_sum += v / static_cast<double>(points.cols());
  return tol * ctx.sum(var_sum) / static_cast<double>(ctx.sum(points.rows()));
}

// Lloyd from `centres`, with the points' squared norms and the absolute tolerance already known.
KmeansResult lloyd(const Context& ctx, const Matrix& points, const std::vector<double>& x2, double tol, Matrix centres,
                   const KmeansOptions& o) {
  const std::int64_t s = points.cols(), k = centres.cols(), n = points.rows();
  // Points per chunk: about 1 MiB of the widest rank's block, the same count on every rank (each chunk is
  // one collective).
  const std::int64_t widest = std::max<std::int64_t>(1, ctx.max(n));
  const std::int64_t chunk = std::clamp<std::int64_t>((std::int64_t{1} << 17) / widest, 8, 512);

  KmeansResult r;
  std::vector<std::int32_t> previous(static_cast<std::size_t>(s), -1);
  Assignment a;
  bool strict = false;
  for (int it = 0; it < o.max_iter; ++it) {
    // Assignment and centre sums in one pass over the points, chunk by chunk: a chunk's columns are
    // still in cache when its labels (one small allreduce) say where to add them.
    Matrix sums(n, k);
    std::vector<std::int64_t> count(static_cast<std::size_t>(k), 0);
    a.labels.assign(static_cast<std::size_t>(s), 0);
    a.own.assign(static_cast<std::size_t>(s), 0.0);
    std::vector<double> c2(static_cast<std::size_t>(k), 0.0);
    for (std::int64_t j = 0; j < k; ++j)
      for (double v : centres.col(j)) c2[static_cast<std::size_t>(j)] += v * v;
    ctx.allreduce_sum(c2);
    Matrix prod(chunk, k);
    for (std::int64_t first = 0; first < s; first += chunk) {
      const std::int64_t w = std::min(chunk, s - first);
      if (n > 0) {
        gemm_raw(Trans::yes, Trans::no, w, k, n, 1.0, points.data() + first * n, n, centres.data(), n, 0.0, prod.data(), chunk);
      } else {
        std::fill(prod.data(), prod.data() + chunk * k, 0.0);
      }
      ctx.allreduce_sum(prod.values());
      for (std::int64_t c = 0; c < w; ++c) {
        const std::int64_t i = first + c;
        std::int32_t l = 0;
        double best = std::numeric_limits<double>::infinity();
        for (std::int64_t j = 0; j < k; ++j) {
          const double v = c2[static_cast<std::size_t>(j)] - 2 * prod(c, j);  // |x|^2 left out, as sklearn
          if (v < best) {
            best = v;
            l = static_cast<std::int32_t>(j);
          }
        }
        a.labels[static_cast<std::size_t>(i)] = l;
        a.own[static_cast<std::size_t>(i)] = std::max(0.0, x2[static_cast<std::size_t>(i)] + best);
        ++count[static_cast<std::size_t>(l)];
        double* dst = sums.col(l).data();
        const double* src = points.col(i).data();
        for (std::int64_t row = 0; row < n; ++row) dst[row] += src[row];
      }
    }
    // Empty clusters are re-seeded from the points farthest from their centres.
    std::vector<std::int64_t> empty;
    for (std::int64_t j = 0; j < k; ++j)
      if (count[static_cast<std::size_t>(j)] == 0) empty.push_back(j);
    if (!empty.empty()) {
      std::vector<std::int64_t> order(static_cast<std::size_t>(s));
      std::iota(order.begin(), order.end(), 0);
      std::stable_sort(order.begin(), order.end(), [&](std::int64_t u, std::int64_t v) {
        return a.own[static_cast<std::size_t>(u)] > a.own[static_cast<std::size_t>(v)];
      });
      for (std::size_t e = 0; e < empty.size(); ++e) {
        const std::int64_t far = order[e], to = empty[e];
        const std::int32_t from = a.labels[static_cast<std::size_t>(far)];
        for (std::int64_t row = 0; row < n; ++row) {
          sums(row, from) -= points(row, far);
          sums(row, to) = points(row, far);
        }
        --count[static_cast<std::size_t>(from)];
        count[static_cast<std::size_t>(to)] = 1;
        ++r.reseeded;
      }
    }
    double shift = 0;
    for (std::int64_t j = 0; j < k; ++j) {
      const double c = static_cast<double>(count[static_cast<std::size_t>(j)]);
      for (std::int64_t row = 0; row < n; ++row) {
        const double v = c > 0 ? sums(row, j) / c : centres(row, j);
        shift += (v - centres(row, j)) * (v - centres(row, j));
        centres(row, j) = v;
      }
    }
    shift = ctx.sum(shift);
    r.iterations = it + 1;
    if (a.labels == previous) {
      strict = true;
      break;
    }
    if (shift <= tol) break;
    previous = a.labels;
  }
  r.converged = strict || r.iterations < o.max_iter;
  // The final assignment against the final centres (sklearn reruns it unless the labels were stable).
  if (!strict) a = assign(ctx, points, x2, centres);
  r.labels = std::move(a.labels);
  r.inertia = std::accumulate(a.own.begin(), a.own.end(), 0.0);
  r.sizes.assign(static_cast<std::size_t>(k), 0);
  for (std::int32_t l : r.labels) ++r.sizes[static_cast<std::size_t>(l)];
  r.centres = std::move(centres);
  return r;
}

}  // namespace

KmeansResult kmeans_from(const Context& ctx, const Matrix& points, Matrix centres, const KmeansOptions& o) {
  return lloyd(ctx, points, squared_norms(ctx, points), absolute_tolerance(ctx, points, o.tol), std::move(centres), o);
}

KmeansResult kmeans(const Context& ctx, const Matrix& points, const KmeansOptions& o) {
  const std::int64_t s = points.cols();
  ctx.agree(o.k < 1 || o.k >= s, fmt::format("k-means: k = {} needs 1 <= k < number of points ({})", o.k, s),
            ExitCode::bad_input);
  const std::vector<double> x2 = squared_norms(ctx, points);
  const double tol = absolute_tolerance(ctx, points, o.tol);
  KmeansResult best;
  best.inertia = std::numeric_limits<double>::infinity();
  for (int init = 0; init < std::max(1, o.n_init); ++init) {
    const std::vector<std::int64_t> start = kmeans_plusplus(ctx, points, x2, o.k, o.seed, init);
    KmeansResult r = lloyd(ctx, points, x2, tol, gather_points(points, start), o);
    r.init_points = start;
    if (r.inertia < best.inertia) best = std::move(r);
  }
  return best;
}

double adjusted_rand_index(const std::vector<std::int32_t>& a, const std::vector<std::int32_t>& b) {
  if (a.size() != b.size()) throw InternalError(fmt::format("ARI of labelings of {} and {} items", a.size(), b.size()));
  // Pair confusion counts from the contingency table (sklearn's pair_confusion_matrix).
  const auto n = static_cast<double>(a.size());
  std::vector<std::int32_t> ua(a), ub(b);
  std::sort(ua.begin(), ua.end());
  ua.erase(std::unique(ua.begin(), ua.end()), ua.end());
  std::sort(ub.begin(), ub.end());
  ub.erase(std::unique(ub.begin(), ub.end()), ub.end());
  std::vector<double> table(ua.size() * ub.size(), 0.0), ra(ua.size(), 0.0), rb(ub.size(), 0.0);
  for (std::size_t i = 0; i < a.size(); ++i) {
    const auto x = static_cast<std::size_t>(std::lower_bound(ua.begin(), ua.end(), a[i]) - ua.begin());
    const auto y = static_cast<std::size_t>(std::lower_bound(ub.begin(), ub.end(), b[i]) - ub.begin());
    table[x * ub.size() + y] += 1;
    ra[x] += 1;
    rb[y] += 1;
  }
  double sum_sq = 0, sa = 0, sb = 0;
  for (double v : table) sum_sq += v * v;
  for (double v : ra) sa += v * v;
  for (double v : rb) sb += v * v;
  const double tp = sum_sq - n, fp = sb - sum_sq, fn = sa - sum_sq, tn = n * n - fp - fn - sum_sq;
  if (fn == 0 && fp == 0) return 1.0;
  return 2.0 * (tp * tn - fn * fp) / ((tp + fn) * (fn + tn) + (tp + fp) * (fp + tn));
}

}  // namespace popcode
