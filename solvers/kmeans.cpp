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
#include "src/log.hpp"
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

  // Products with centres without standardising the points: with z = (x - o) * s per row, z.c equals
  // x.(s * c) - (o * s).c, so the centres are scaled instead (`ct`, interleaved for interleaved_products,
  // kp columns) and the second term (`bias`, this rank's rows' part) is subtracted. The points are then
  // read where they lie, once, with no standardised scratch copy.
  struct Prepared {
    std::vector<double> ct, bias;
  };
  Prepared prepare(const Matrix& c, std::int64_t kp) const {
    const std::int64_t n = x_.rows();
    Prepared p;
    p.ct.assign(static_cast<std::size_t>(n * kp), 0.0);
    p.bias.assign(static_cast<std::size_t>(c.cols()), 0.0);
    for (std::int64_t j = 0; j < c.cols(); ++j)
      for (std::int64_t r = 0; r < n; ++r) {
        if (scaling_ == nullptr) {
          p.ct[static_cast<std::size_t>(r * kp + j)] = c(r, j);
          continue;
        }
        const double sc = scaling_->scale[static_cast<std::size_t>(r)] * c(r, j);
        p.ct[static_cast<std::size_t>(r * kp + j)] = sc;
        p.bias[static_cast<std::size_t>(j)] += scaling_->offset[static_cast<std::size_t>(r)] * sc;
      }
    return p;
  }
  // This rank's part of the products of points [first, first + w), or of points ids[0..w) when ids is
  // given, with the prepared centres: out[c * kp + j], j < bias.size().
  void products(const Prepared& p, std::int64_t kp, std::int64_t first, const std::int64_t* ids, std::int64_t w,
                double* out) const {
    const std::int64_t n = x_.rows();
    interleaved_products(ids != nullptr ? x_.data() : x_.data() + first * n, n, n, w, p.ct.data(), kp, out, ids);
    if (scaling_ == nullptr) return;
    for (std::int64_t c = 0; c < w; ++c)
      for (std::size_t j = 0; j < p.bias.size(); ++j) out[static_cast<std::size_t>(c * kp) + j] -= p.bias[j];
  }
  // Point s as stored (this rank's rows), not standardised.
  const double* raw(std::int64_t s) const { return x_.data() + s * x_.rows(); }
  // A mean of stored values, row r, in the standardised space.
  double standardised(std::int64_t r, double v) const {
    if (scaling_ == nullptr) return v;
    return (v - scaling_->offset[static_cast<std::size_t>(r)]) * scaling_->scale[static_cast<std::size_t>(r)];
  }
  // The squared norm, summed over ranks, of the offsets in the standardised space, sum_r (o_r s_r)^2: how
  // much larger than the standardised points' the scaled products' terms can be (rounding bounds).
  double offset_norm2(const Context& ctx) const {
    double v = 0;
    if (scaling_ != nullptr)
      for (std::size_t r = 0; r < scaling_->offset.size(); ++r) v += std::pow(scaling_->offset[r] * scaling_->scale[r], 2);
    return ctx.sum(v);
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
// Lloyd each chunk is one collective), and a multiple of 4, the products kernel's group of points (a
// chunk of 13 points of 10,000 rows left one point to the slower single-point loop: Lloyd 0.52-0.57 s,
// against 0.48 s with 12).
std::int64_t chunk_points(const Context& ctx, std::int64_t n) {
  const std::int64_t widest = std::max<std::int64_t>(1, ctx.max(n));
  return std::clamp<std::int64_t>((std::int64_t{1} << 17) / widest / 4 * 4, 8, 512);
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

std::int64_t padded(std::int64_t k) { return (k + 7) / 8 * 8; }

// Inner products of every (standardised) point with the columns of `c` (this rank's rows), summed over
// ranks: S x c.cols().
Matrix products(const Context& ctx, const Points& x, const Matrix& c) {
  const std::int64_t n = x.rows(), m = c.cols(), kp = padded(m), chunk = chunk_points(ctx, n);
  const Points::Prepared prepared = x.prepare(c, kp);
  std::vector<double> buf(static_cast<std::size_t>(chunk * kp));
  Matrix p(x.cols(), m);
  for (std::int64_t first = 0; first < x.cols(); first += chunk) {
    const std::int64_t w = std::min(chunk, x.cols() - first);
    x.products(prepared, kp, first, nullptr, w, buf.data());
    for (std::int64_t i = 0; i < w; ++i)
      for (std::int64_t j = 0; j < m; ++j) p(first + i, j) = buf[static_cast<std::size_t>(i * kp + j)];
  }
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

// Squared norms of the centres, summed over ranks (replicated).
std::vector<double> centre_norms(const Context& ctx, const Matrix& centres) {
  std::vector<double> c2(static_cast<std::size_t>(centres.cols()), 0.0);
  for (std::int64_t j = 0; j < centres.cols(); ++j)
    for (double v : centres.col(j)) c2[static_cast<std::size_t>(j)] += v * v;
  ctx.allreduce_sum(c2);
  return c2;
}

// Nearest centre of every point (ties to the lower centre), from the replicated products; or, given
// `labels`, those labels kept and each point's squared distance to the centre they name.
Assignment assign(const Context& ctx, const Points& x, const std::vector<double>& x2, const Matrix& centres,
                  const std::vector<std::int32_t>* labels = nullptr) {
  const Matrix p = products(ctx, x, centres);
  const std::vector<double> c2 = centre_norms(ctx, centres);
  Assignment a;
  a.labels.resize(static_cast<std::size_t>(x.cols()));
  a.own.resize(static_cast<std::size_t>(x.cols()));
  for (std::int64_t i = 0; i < x.cols(); ++i) {
    std::int32_t best = 0;
    double best_value = std::numeric_limits<double>::infinity();
    if (labels != nullptr) {
      best = (*labels)[static_cast<std::size_t>(i)];
      best_value = c2[static_cast<std::size_t>(best)] - 2 * p(i, best);
    } else {
      for (std::int64_t j = 0; j < centres.cols(); ++j) {
        const double v = c2[static_cast<std::size_t>(j)] - 2 * p(i, j);  // |x|^2 left out, as sklearn
        if (v < best_value) {
          best_value = v;
          best = static_cast<std::int32_t>(j);
        }
      }
    }
    a.labels[static_cast<std::size_t>(i)] = best;
    a.own[static_cast<std::size_t>(i)] = std::max(0.0, x2[static_cast<std::size_t>(i)] + best_value);
  }
  return a;
}

// The centres as means of their sums, which are of the stored values, so the means are standardised after
// (the mean of (x - o) s is (mean x - o) s); a cluster with no points keeps its centre.
void means(const Points& points, const Matrix& sums, const std::vector<std::int64_t>& count, const Matrix& centres,
           Matrix& out) {
  for (std::int64_t j = 0; j < sums.cols(); ++j) {
    const auto c = static_cast<double>(count[static_cast<std::size_t>(j)]);
    for (std::int64_t row = 0; row < sums.rows(); ++row)
      out(row, j) = c > 0 ? points.standardised(row, sums(row, j) / c) : centres(row, j);
  }
}

// This rank's partial Gram matrix of the centres, C^T C (k x k).
void gram_t(const Matrix& centres, Matrix& g) {
  for (std::int64_t a = 0; a < centres.cols(); ++a)
    for (std::int64_t b = 0; b <= a; ++b) {
      double v = 0;
      for (std::int64_t row = 0; row < centres.rows(); ++row) v += centres(row, a) * centres(row, b);
      g(a, b) = g(b, a) = v;
    }
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
//
// Bounds (o.bounds; see kmeans.hpp for the three skip tests). All the bound state is replicated, so every
// rank makes the same decisions and reads the same points. An iteration that reads every point (the first,
// and any in which nothing is skipped) recomputes the sums from zero exactly as plain Lloyd does, so without
// bounds the arithmetic is plain Lloyd's. Rounding: a computed distance can differ from the true one by up
// to `slack` (the standard dot-product error bound over n_global terms, given that a centre's norm never
// exceeds the largest point norm), and a point is skipped only when its margin exceeds a few times that,
// so a skipped point's label is the one a full assignment would give, rounding included.
KmeansResult lloyd(const Context& ctx, const Points& points, const std::vector<double>& x2, double tol, Matrix centres,
                   const KmeansOptions& o) {
  const std::int64_t s = points.cols(), k = centres.cols(), n = points.rows(), kp = padded(k);
  const std::int64_t chunk = chunk_points(ctx, n), n_global = ctx.sum(n);
  const auto ks = static_cast<std::size_t>(k);
  // The largest squared norm a point's terms in the products can have: the standardised point's plus twice
  // the offsets' (the products are formed from the stored values and scaled centres, Points::prepare).
  const double x2_max = x2.empty() ? 0.0 : *std::max_element(x2.begin(), x2.end());
  const double a2_max = std::pow(std::sqrt(x2_max) + 2 * std::sqrt(points.offset_norm2(ctx)), 2);

  KmeansResult r;
  std::vector<std::int32_t> labels(static_cast<std::size_t>(s), -1), previous(static_cast<std::size_t>(s), -1);
  // Bounds state: the iteration at which each point was last read, its exact distances to all k centres
  // then (S x k), and the centres of every iteration some point was last read at, with reference counts;
  // a snapshot no point refers to is freed, and past `history_cap` snapshots the oldest is dropped and its
  // points are read again.
  std::vector<std::int32_t> seen(static_cast<std::size_t>(s), -1);
  std::vector<double> dist(static_cast<std::size_t>(s) * ks, 0.0);
  std::vector<Matrix> history;
  std::vector<std::int64_t> refs;
  const std::int64_t history_cap =
      o.bounds_history > 0
          ? o.bounds_history
          : std::max<std::int64_t>(4, (std::int64_t{64} << 20) / std::max<std::int64_t>(1, 8 * ctx.max(n) * k));
  Matrix sums(n, k);
  std::vector<std::int64_t> count(ks, 0);
  bool strict = false;
  double slack2 = 0;  // the largest squared rounding slack of any distance computed so far
  std::vector<double> prod(static_cast<std::size_t>(chunk * kp));
  std::vector<std::int64_t> need;
  need.reserve(static_cast<std::size_t>(s));
  for (int it = 0; it < o.max_iter; ++it) {
    const std::vector<double> c2 = centre_norms(ctx, centres);
    const double c2_max = *std::max_element(c2.begin(), c2.end());
    slack2 = std::max(slack2, static_cast<double>(n_global + 8) * std::numeric_limits<double>::epsilon() * 2 *
                                  (a2_max + c2_max));
    const double slack = std::sqrt(slack2), margin = 4 * slack;

    // The points to read: all of them without bounds (or before any), else those whose bounds leave room.
    need.clear();
    if (o.bounds && it > 0) {
      // How far each centre has moved since each live snapshot (one allreduce for all), and half the
      // distances between the current centres.
      std::vector<std::int64_t> live;
      for (std::int64_t t = 0; t < static_cast<std::int64_t>(history.size()); ++t)
        if (refs[static_cast<std::size_t>(t)] > 0) live.push_back(t);
      std::vector<bool> drop(history.size(), false);
      if (static_cast<std::int64_t>(live.size()) > history_cap) {
        drop[static_cast<std::size_t>(live.front())] = true;
        live.erase(live.begin());
      }
      // Per live snapshot t, with C = its centres and D = (current centres - C): the Grams C^T D and D^T D
      // (k x k each, one dgemm of [C | D]^T D), all allreduced at once.
      const auto kk = ks * ks;
      std::vector<double> grams(live.size() * 2 * kk, 0.0);
      std::vector<double> cd(static_cast<std::size_t>(n * 2 * k));
      for (std::size_t l = 0; l < live.size(); ++l) {
        const Matrix& h = history[static_cast<std::size_t>(live[l])];
        for (std::int64_t j = 0; j < k; ++j)
          for (std::int64_t row = 0; row < n; ++row) {
            cd[static_cast<std::size_t>(j * n + row)] = h(row, j);
            cd[static_cast<std::size_t>((k + j) * n + row)] = centres(row, j) - h(row, j);
          }
        if (n > 0)
          gemm_raw(Trans::yes, Trans::no, 2 * k, k, n, 1.0, cd.data(), n, cd.data() + k * n, n, 0.0,
                   grams.data() + l * 2 * kk, 2 * k);
      }
      ctx.allreduce_sum(grams);
      // moved[t][j] = |D_j|; shift[t][a][j] = |D_j - D_a|; drift[t][a][j] = |D_j|^2 - |D_a|^2 - 2 (C_a - C_j).D_j
      std::vector<double> moved(history.size() * ks, 0.0), shift(history.size() * kk, 0.0), drift(history.size() * kk, 0.0);
      for (std::size_t l = 0; l < live.size(); ++l) {
        const double* gm = grams.data() + l * 2 * kk;  // column-major 2k x k: rows 0..k-1 C^T D, rows k..2k-1 D^T D
        const auto cdot = [&](std::size_t a, std::size_t j) { return gm[j * 2 * ks + a]; };
        const auto ddot = [&](std::size_t a, std::size_t j) { return gm[j * 2 * ks + ks + a]; };
        const auto t = static_cast<std::size_t>(live[l]);
        for (std::size_t j = 0; j < ks; ++j) moved[t * ks + j] = std::sqrt(std::max(0.0, ddot(j, j)));
        for (std::size_t a = 0; a < ks; ++a)
          for (std::size_t j = 0; j < ks; ++j) {
            shift[t * kk + a * ks + j] = std::sqrt(std::max(0.0, ddot(j, j) + ddot(a, a) - 2 * ddot(a, j)));
            drift[t * kk + a * ks + j] = ddot(j, j) - ddot(a, a) - 2 * (cdot(a, j) - cdot(j, j));
          }
      }
      Matrix g(k, k);
      gram_t(centres, g);
      ctx.allreduce_sum(g.values());
      std::vector<double> half(ks * ks, 0.0);
      for (std::size_t a = 0; a < ks; ++a)
        for (std::size_t j = 0; j < ks; ++j)
          half[a * ks + j] = 0.5 * std::sqrt(std::max(0.0, c2[a] + c2[j] - 2 * g(static_cast<std::int64_t>(a), static_cast<std::int64_t>(j))));
      for (std::int64_t i = 0; i < s; ++i) {
        const auto is = static_cast<std::size_t>(i);
        const auto t = static_cast<std::size_t>(seen[is]);
        if (drop[t]) {
          need.push_back(i);
          continue;
        }
        const auto a = static_cast<std::size_t>(labels[is]);
        const double* d = dist.data() + is * ks;
        const double* m = moved.data() + t * ks;
        const double u = d[a] + m[a] + margin;  // above the distance to its own centre
        const double* e = shift.data() + t * kk + a * ks;
        const double* f = drift.data() + t * kk + a * ks;
        for (std::size_t j = 0; j < ks; ++j) {
          if (j == a || u < std::max(d[j] - m[j], half[a * ks + j])) continue;
          // |x - c_j|^2 - |x - c_a|^2 now, from its value at t: with x = C_a + r (|r| = d[a]) it is at
          // least d[j]^2 - d[a]^2 + drift - 2 |r| |D_j - D_a|.
          if ((d[j] - d[a]) * (d[j] + d[a]) + f[j] - 2 * (d[a] + slack) * (e[j] + slack) > 16 * slack2) continue;
          need.push_back(i);
          break;
        }
      }
    } else {
      for (std::int64_t i = 0; i < s; ++i) need.push_back(i);
    }
    if (o.bounds && it > 0 && ctx.size() > 1) {
      // The bound state is the same on every rank (it comes from allreduced values, which Open MPI's sums
      // give every rank bit for bit, as the replicated labels already assume), so the lists agree. Each
      // chunk of the list is a collective, though, so the first rank's list is the one used: should an MPI
      // library round a sum differently on some rank, the ranks still make the same collective calls.
      // The other decisions that gate collectives (re-seeding, stopping) are agreed for the same reason,
      // and the final labels are checked to be the same on every rank.
      double count_root = static_cast<double>(need.size());
      ctx.broadcast(std::span<double>(&count_root, 1));
      std::vector<double> ids(static_cast<std::size_t>(count_root));
      if (ctx.root()) std::copy(need.begin(), need.end(), ids.begin());
      ctx.broadcast(ids);
      need.resize(ids.size());
      for (std::size_t q = 0; q < ids.size(); ++q) need[q] = static_cast<std::int64_t>(ids[q]);
    }
    const bool full = static_cast<std::int64_t>(need.size()) == s;
    if (full) {
      std::fill(sums.values().begin(), sums.values().end(), 0.0);
      std::fill(count.begin(), count.end(), 0);
    }
    r.points_skipped += s - static_cast<std::int64_t>(need.size());

    // Assignment of the points read, and the centre sums, in one pass, chunk by chunk: a chunk's columns are
    // still in cache when its labels (one small allreduce) say where to add them.
    const Points::Prepared prepared = points.prepare(centres, kp);
    for (std::size_t g = 0; g < need.size(); g += static_cast<std::size_t>(chunk)) {
      const std::int64_t w = std::min<std::int64_t>(chunk, static_cast<std::int64_t>(need.size() - g));
      const std::int64_t first = need[g];
      const bool contiguous = need[g + static_cast<std::size_t>(w) - 1] - first == w - 1;
      points.products(prepared, kp, first, contiguous ? nullptr : need.data() + g, w, prod.data());
      ctx.allreduce_sum(std::span<double>(prod.data(), static_cast<std::size_t>(w * kp)));
      for (std::int64_t c = 0; c < w; ++c) {
        const std::int64_t i = need[g + static_cast<std::size_t>(c)];
        const auto is = static_cast<std::size_t>(i);
        std::int32_t l = 0;
        double best = std::numeric_limits<double>::infinity();
        double* d = dist.data() + is * ks;
        for (std::int64_t j = 0; j < k; ++j) {
          const double v = c2[static_cast<std::size_t>(j)] - 2 * prod[static_cast<std::size_t>(c * kp + j)];  // |x|^2 left out, as sklearn
          d[j] = std::sqrt(std::max(0.0, x2[is] + v));
          if (v < best) {
            best = v;
            l = static_cast<std::int32_t>(j);
          }
        }
        if (o.bounds) {
          if (seen[is] >= 0) --refs[static_cast<std::size_t>(seen[is])];
          seen[is] = it;
        }
        const std::int32_t old = full ? -1 : labels[is];
        labels[is] = l;
        if (old == l) continue;
        const double* __restrict src = points.raw(i);  // the sums are of the stored values (see means)
        ++count[static_cast<std::size_t>(l)];
        double* __restrict dst = sums.col(l).data();
        for (std::int64_t row = 0; row < n; ++row) dst[row] += src[row];
        if (old >= 0) {
          --count[static_cast<std::size_t>(old)];
          double* __restrict from = sums.col(old).data();
          for (std::int64_t row = 0; row < n; ++row) from[row] -= src[row];
        }
      }
    }

    if (o.bounds) {
      history.resize(static_cast<std::size_t>(it) + 1);
      refs.resize(static_cast<std::size_t>(it) + 1, 0);
      refs[static_cast<std::size_t>(it)] = static_cast<std::int64_t>(need.size());
      if (!need.empty()) history[static_cast<std::size_t>(it)] = centres;
      for (std::size_t t = 0; t < history.size(); ++t)
        if (refs[t] == 0 && history[t].cols() > 0) history[t] = Matrix();
    }

    // The new centres: the means, except that empty clusters are re-seeded from the points farthest from
    // their centres (sklearn's rule: that needs every point's exact distance, so a full pass, rarely). The
    // re-seeding moves centres but not labels, so it works on copies and `sums` stays the labels' sums.
    Matrix next(n, k);
    std::vector<std::int64_t> empty;
    for (std::int64_t j = 0; j < k; ++j)
      if (count[static_cast<std::size_t>(j)] == 0) empty.push_back(j);
    if (ctx.any(!empty.empty())) {
      const std::vector<double> own = assign(ctx, points, x2, centres, &labels).own;
      std::vector<std::int64_t> order(static_cast<std::size_t>(s));
      std::iota(order.begin(), order.end(), 0);
      std::stable_sort(order.begin(), order.end(), [&](std::int64_t u, std::int64_t v) {
        return own[static_cast<std::size_t>(u)] > own[static_cast<std::size_t>(v)];
      });
      Matrix moved = sums;
      std::vector<std::int64_t> moved_count = count;
      for (std::size_t e = 0; e < empty.size(); ++e) {
        const std::int64_t far = order[e], to = empty[e];
        const std::int32_t from = labels[static_cast<std::size_t>(far)];
        const double* far_point = points.raw(far);
        for (std::int64_t row = 0; row < n; ++row) {
          moved(row, from) -= far_point[row];
          moved(row, to) = far_point[row];
        }
        --moved_count[static_cast<std::size_t>(from)];
        moved_count[static_cast<std::size_t>(to)] = 1;
        ++r.reseeded;
      }
      means(points, moved, moved_count, centres, next);
    } else {
      means(points, sums, count, centres, next);
    }
    std::vector<double> moved_by(ks, 0.0);  // squared shift of each centre
    for (std::int64_t j = 0; j < k; ++j)
      for (std::int64_t row = 0; row < n; ++row) {
        const double d = next(row, j) - centres(row, j);
        moved_by[static_cast<std::size_t>(j)] += d * d;
      }
    ctx.allreduce_sum(moved_by);
    const double shift = std::accumulate(moved_by.begin(), moved_by.end(), 0.0);
    centres = std::move(next);
    if (log::level() == log::Level::verbose) {
      std::int64_t changed = 0;
      for (std::size_t i = 0; i < labels.size(); ++i) changed += labels[i] != previous[i];
      log::debug("k-means iteration {}: {} of {} points read, {} changed cluster, squared centre shift {:.4g}", it + 1,
                 need.size(), s, changed, shift);
    }
    r.iterations = it + 1;
    if (!ctx.any(labels != previous)) {
      strict = true;
      break;
    }
    if (shift <= tol) break;
    previous = labels;
  }
  r.converged = strict || r.iterations < o.max_iter;
  // The final assignment against the final centres (sklearn reruns it unless the labels were stable), and
  // the inertia against the final centres in either case.
  Assignment a = assign(ctx, points, x2, centres, strict ? &labels : nullptr);
  r.labels = std::move(a.labels);
  // Every rank computed the labels from allreduced products; if an MPI library ever rounded a sum
  // differently on some rank, say so rather than write one rank's labels as everyone's.
  ctx.agree(!ctx.same_on_all_ranks(std::as_bytes(std::span<const std::int32_t>(r.labels))),
            "k-means: the ranks' labels differ (the MPI library's sums were not bitwise equal on every rank); results "
            "would depend on which rank writes them",
            ExitCode::internal);
  r.inertia = std::accumulate(a.own.begin(), a.own.end(), 0.0);
  r.sizes.assign(ks, 0);
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
