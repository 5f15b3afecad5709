#include "solvers/response_distances.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <limits>

#include "solvers/cross_repeat.hpp"
#include "solvers/geodesic.hpp"

namespace popcode {

namespace {

// Moments, collected locally and combined over ranks.
struct Moments {
  long double sum = 0, sum2 = 0;
  double min = std::numeric_limits<double>::infinity(), max = -std::numeric_limits<double>::infinity();
  std::int64_t count = 0;
  void add(double x) {
    sum += x;
    sum2 += static_cast<long double>(x) * x;
    min = std::min(min, x);
    max = std::max(max, x);
    ++count;
  }
  DistanceSummary finish(const Context& ctx) const {
    double v[2] = {static_cast<double>(sum), static_cast<double>(sum2)};
    ctx.allreduce_sum(std::span<double>(v, 2));
    DistanceSummary s;
    s.count = ctx.sum(count);
    s.min = ctx.min(min);
    s.max = ctx.max(max);
    s.mean = s.count > 0 ? v[0] / static_cast<double>(s.count) : std::nan("");
    s.std = s.count > 0 ? std::sqrt(std::max(0.0, v[1] / static_cast<double>(s.count) - s.mean * s.mean)) : std::nan("");
    return s;
  }
};

}  // namespace

DistanceDistributions response_distances(const Context& ctx, const Matrix& repeats, bool zscored, int bins) {
  CrossRepeatProducts cp =
      cross_repeat_products(ctx, repeats, {}, true, zscored ? CrossTransform::zscore : CrossTransform::raw);
  const std::int64_t s_count = cp.stimuli;
  if (s_count < 2) throw InternalError("response distances need at least 2 stimuli");
  DistanceDistributions out;
  out.neurons = cp.neurons;
  out.zero_variance = cp.zero_variance;

  // Distances in place of the products; the same-image ones go aside, the different ones to the front.
  std::vector<double> same_local;
  std::vector<double>& d = cp.columns;
  std::size_t different = 0;
  Moments same_m, diff_m;
  for (std::int64_t s = cp.queries.begin; s < cp.queries.end; ++s)
    for (std::int64_t t = 0; t < s_count; ++t) {
      const double x = std::sqrt(std::max(0.0, cp.norm2[static_cast<std::size_t>(t)] +
                                                   cp.norm2[static_cast<std::size_t>(s_count + s)] - 2.0 * cp.at(t, s)));
      if (t == s) {
        same_local.push_back(x);
        same_m.add(x);
      } else {
        d[different++] = x;
        diff_m.add(x);
      }
    }
  d.resize(different);
  out.same = allgather_blocks(ctx, same_local, MPI_DOUBLE);
  out.same_summary = same_m.finish(ctx);
  out.different_summary = diff_m.finish(ctx);
  const DistanceSummary& a = out.same_summary;
  const DistanceSummary& b = out.different_summary;
  out.d_prime = (b.mean - a.mean) / std::sqrt((b.std * b.std + a.std * a.std) / 2);

  // Histograms on common bins over all S^2 distances.
  double first = std::min(a.min, b.min), last = std::max(a.max, b.max);
  if (first == last) {
    first -= 0.5;
    last += 0.5;
  }
  out.edges = numpy_bin_edges(first, last, bins);
  out.same_counts.assign(static_cast<std::size_t>(bins), 0);
  out.different_counts.assign(static_cast<std::size_t>(bins), 0);
  for (double x : same_local) ++out.same_counts[static_cast<std::size_t>(numpy_bin_index(x, first, last, out.edges))];
  for (double x : d) ++out.different_counts[static_cast<std::size_t>(numpy_bin_index(x, first, last, out.edges))];
  ctx.allreduce_sum(out.same_counts);
  ctx.allreduce_sum(out.different_counts);

  // AUC: for every same-image distance, the different-image distances above it and equal to it.
  std::sort(d.begin(), d.end());
  std::vector<std::int64_t> greater_equal(2 * out.same.size(), 0);
  for (std::size_t i = 0; i < out.same.size(); ++i) {
    const auto lo = std::lower_bound(d.begin(), d.end(), out.same[i]);
    const auto hi = std::upper_bound(lo, d.end(), out.same[i]);
    greater_equal[2 * i] = d.end() - hi;  // different distances greater than this same-image distance
    greater_equal[2 * i + 1] = hi - lo;
  }
  ctx.allreduce_sum(greater_equal);
  long double wins = 0;
  for (std::size_t i = 0; i < out.same.size(); ++i) wins += greater_equal[2 * i] + 0.5L * greater_equal[2 * i + 1];
  out.auc = static_cast<double>(wins / (static_cast<long double>(a.count) * static_cast<long double>(b.count)));
  return out;
}

}  // namespace popcode
