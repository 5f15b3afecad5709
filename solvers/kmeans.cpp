#include "solvers/kmeans.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <limits>
#include <numeric>
#include <span>
#include <vector>

#include "solvers/dense.hpp"
#include "src/errors.hpp"
#include "src/rng.hpp"

namespace popcode {

namespace {

// The points as k-means reads them: the columns of the block, standardised on the way when a scaling is
// given, a chunk at a time (so a standardised copy of the whole block never exists).
class Points {
 public:
  Points(const Matrix& x, const RowScaling* scaling) : x_(x), scaling_(scaling) {
    const auto n = static_cast<std::size_t>(x.rows());
    if (scaling != nullptr && (scaling->offset.size() != n || scaling->scale.size() != n))
      throw InternalError(fmt::format("k-means: a scaling of {} / {} rows for a block of {}", scaling->offset.size(),
                                      scaling->scale.size(), n));
  }
  std::int64_t rows() const { return x_.rows(); }
  std::int64_t cols() const { return x_.cols(); }

  // Columns [first, first + w) as a column-major rows() x w array: the block itself, or `scratch` holding
  // their standardised values.
  const double* columns(std::int64_t first, std::int64_t w, std::vector<double>& scratch) const {
    const std::int64_t n = x_.rows();
    if (scaling_ == nullptr || n == 0) return x_.data() + first * n;
    scratch.resize(static_cast<std::size_t>(n * w));
    const double* __restrict offset = scaling_->offset.data();
    const double* __restrict scale = scaling_->scale.data();
    for (std::int64_t c = 0; c < w; ++c) {
      const double* __restrict src = x_.col(first + c).data();
      double* __restrict dst = scratch.data() + c * n;
      for (std::int64_t r = 0; r < n; ++r) dst[r] = (src[r] - offset[r]) * scale[r];
    }
    return scratch.data();
  }

  // Point s (this rank's rows) into `out`.
  void column(std::int64_t s, double* out) const {
    std::vector<double> scratch;
    const double* c = columns(s, 1, scratch);
    std::copy_n(c, x_.rows(), out);
  }

 private:
  const Matrix& x_;
  const RowScaling* scaling_;
};

// Points per chunk of a pass: about 1 MiB of the widest rank's block, the same count on every rank (in
// Lloyd each chunk is one collective).
std::int64_t chunk_points(const Context& ctx, std::int64_t n) {
  const std::int64_t widest = std::max<std::int64_t>(1, ctx.max(n));
  return std::clamp<std::int64_t>((std::int64_t{1} << 17) / widest, 8, 512);
}

// Calls f(first, w, columns) over the points, chunk by chunk.
template <typename F>
void for_each_chunk(const Points& x, std::int64_t chunk, F&& f) {
  std::vector<double> scratch;
  for (std::int64_t first = 0; first < x.cols(); first += chunk) {
    const std::int64_t w = std::min(chunk, x.cols() - first);
    f(first, w, x.columns(first, w, scratch));
  }
}

// Squared norm of every point (replicated).
std::vector<double> squared_norms(const Context& ctx, const Points& x) {
  const std::int64_t n = x.rows();
  std::vector<double> n2(static_cast<std::size_t>(x.cols()), 0.0);
  for_each_chunk(x, chunk_points(ctx, n), [&](std::int64_t first, std::int64_t w, const double* block) {
    for (std::int64_t c = 0; c < w; ++c) {
      double& v2 = n2[static_cast<std::size_t>(first + c)];
      for (std::int64_t r = 0; r < n; ++r) v2 += block[c * n + r] * block[c * n + r];
    }
  });
  ctx.allreduce_sum(n2);
  return n2;
}

// The columns of `c` (this rank's rows) interleaved row by row for interleaved_products, zero-padded to a
// multiple of 8 columns.
std::vector<double> interleave(const Matrix& c, std::int64_t kp) {
  std::vector<double> ct(static_cast<std::size_t>(c.rows() * kp), 0.0);
  for (std::int64_t j = 0; j < c.cols(); ++j)
    for (std::int64_t r = 0; r < c.rows(); ++r) ct[static_cast<std::size_t>(r * kp + j)] = c(r, j);
  return ct;
}

std::int64_t padded(std::int64_t k) { return (k + 7) / 8 * 8; }

// Inner products of every point with the columns of `c` (this rank's rows), summed over ranks: S x c.cols().
Matrix products(const Context& ctx, const Points& x, const Matrix& c) {
  const std::int64_t n = x.rows(), m = c.cols(), kp = padded(m), chunk = chunk_points(ctx, n);
  const std::vector<double> ct = interleave(c, kp);
  std::vector<double> buf(static_cast<std::size_t>(chunk * kp));
  Matrix p(x.cols(), m);
  for_each_chunk(x, chunk, [&](std::int64_t first, std::int64_t w, const double* block) {
    interleaved_products(block, n, n, w, ct.data(), kp, buf.data());
    for (std::int64_t i = 0; i < w; ++i)
      for (std::int64_t j = 0; j < m; ++j) p(first + i, j) = buf[static_cast<std::size_t>(i * kp + j)];
  });
  ctx.allreduce_sum(p.values());
  return p;
}

// This rank's rows of the listed points, as columns.
Matrix gather_points(const Points& x, const std::vector<std::int64_t>& ids) {
  Matrix c(x.rows(), static_cast<std::int64_t>(ids.size()));
  for (std::size_t j = 0; j < ids.size(); ++j) x.column(ids[j], c.col(static_cast<std::int64_t>(j)).data());
  return c;
}

// Greedy k-means++ (sklearn's _kmeans_plusplus); returns the chosen points.
std::vector<std::int64_t> kmeans_plusplus(const Context& ctx, const Points& x, const std::vector<double>& x2, std::int64_t k,
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
Assignment assign(const Context& ctx, const Points& x, const std::vector<double>& x2, const Matrix& centres) {
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

// sklearn's tolerance: tol times the mean over coordinates (neurons) of the points' variance (two passes,
// as row_moments).
double absolute_tolerance(const Context& ctx, const Points& x, double tol) {
  const std::int64_t n = x.rows(), chunk = chunk_points(ctx, n);
  const auto cols = static_cast<double>(x.cols());
  std::vector<double> mean(static_cast<std::size_t>(n), 0.0), ssd(static_cast<std::size_t>(n), 0.0);
  for_each_chunk(x, chunk, [&](std::int64_t, std::int64_t w, const double* block) {
    for (std::int64_t c = 0; c < w; ++c)
      for (std::int64_t r = 0; r < n; ++r) mean[static_cast<std::size_t>(r)] += block[c * n + r];
  });
  for (double& v : mean) v /= cols;
  for_each_chunk(x, chunk, [&](std::int64_t, std::int64_t w, const double* block) {
    for (std::int64_t c = 0; c < w; ++c)
      for (std::int64_t r = 0; r < n; ++r) {
        const double d = block[c * n + r] - mean[static_cast<std::size_t>(r)];
        ssd[static_cast<std::size_t>(r)] += d * d;
      }
  });
  double var_sum = 0;
  for (double v : ssd) var_sum += v / cols;
  return tol * ctx.sum(var_sum) / static_cast<double>(ctx.sum(n));
}

// Lloyd from `centres`, with the points' squared norms and the absolute tolerance already known.
KmeansResult lloyd(const Context& ctx, const Points& points, const std::vector<double>& x2, double tol, Matrix centres,
                   const KmeansOptions& o) {
  const std::int64_t s = points.cols(), k = centres.cols(), n = points.rows(), kp = padded(k);
  const std::int64_t chunk = chunk_points(ctx, n);

  KmeansResult r;
  std::vector<std::int32_t> previous(static_cast<std::size_t>(s), -1);
  Assignment a;
  bool strict = false;
  std::vector<double> prod(static_cast<std::size_t>(chunk * kp)), far_point(static_cast<std::size_t>(n));
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
    const std::vector<double> ct = interleave(centres, kp);
    for_each_chunk(points, chunk, [&](std::int64_t first, std::int64_t w, const double* block) {
      interleaved_products(block, n, n, w, ct.data(), kp, prod.data());
      ctx.allreduce_sum(std::span<double>(prod.data(), static_cast<std::size_t>(w * kp)));
      for (std::int64_t c = 0; c < w; ++c) {
        const std::int64_t i = first + c;
        std::int32_t l = 0;
        double best = std::numeric_limits<double>::infinity();
        for (std::int64_t j = 0; j < k; ++j) {
          const double v = c2[static_cast<std::size_t>(j)] - 2 * prod[static_cast<std::size_t>(c * kp + j)];  // |x|^2 left out, as sklearn
          if (v < best) {
            best = v;
            l = static_cast<std::int32_t>(j);
          }
        }
        a.labels[static_cast<std::size_t>(i)] = l;
        a.own[static_cast<std::size_t>(i)] = std::max(0.0, x2[static_cast<std::size_t>(i)] + best);
        ++count[static_cast<std::size_t>(l)];
        double* __restrict dst = sums.col(l).data();
        const double* __restrict src = block + c * n;
        for (std::int64_t row = 0; row < n; ++row) dst[row] += src[row];
      }
    });
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
        points.column(far, far_point.data());
        for (std::int64_t row = 0; row < n; ++row) {
          sums(row, from) -= far_point[static_cast<std::size_t>(row)];
          sums(row, to) = far_point[static_cast<std::size_t>(row)];
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

KmeansResult kmeans_from(const Context& ctx, const Matrix& block, Matrix centres, const KmeansOptions& o,
                         const RowScaling* scaling) {
  const Points points(block, scaling);
  return lloyd(ctx, points, squared_norms(ctx, points), absolute_tolerance(ctx, points, o.tol), std::move(centres), o);
}

KmeansResult kmeans(const Context& ctx, const Matrix& block, const KmeansOptions& o, const RowScaling* scaling) {
  const Points points(block, scaling);
  const std::int64_t s = points.cols();
  ctx.agree(o.k < 1 || o.k >= s, fmt::format("k-means: k = {} needs 1 <= k < number of points ({})", o.k, s),
            ExitCode::bad_input);
  const std::vector<double> x2 = squared_norms(ctx, points);
  const double tol = absolute_tolerance(ctx, points, o.tol);
  KmeansResult best;
  best.inertia = std::numeric_limits<double>::infinity();
  double lloyd_seconds = 0;
  for (int init = 0; init < std::max(1, o.n_init); ++init) {
    const std::vector<std::int64_t> start = kmeans_plusplus(ctx, points, x2, o.k, o.seed, init);
    const auto t0 = std::chrono::steady_clock::now();
    KmeansResult r = lloyd(ctx, points, x2, tol, gather_points(points, start), o);
    lloyd_seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    r.init_points = start;
    if (r.inertia < best.inertia) best = std::move(r);
  }
  best.lloyd_seconds = lloyd_seconds;
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
