#include "solvers/identity_decoding.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

#include "partition/block_layout.hpp"
#include "solvers/cross_repeat.hpp"
#include "src/progress.hpp"
#include "src/rng.hpp"

namespace popcode {

IdentitySimilarity parse_identity_similarity(const std::string& name) {
  if (name == "correlation") return IdentitySimilarity::correlation;
  if (name == "dot") return IdentitySimilarity::dot;
  throw UsageError(fmt::format("unknown identity similarity '{}' (expected correlation or dot)", name));
}

const char* identity_similarity_name(IdentitySimilarity s) {
  return s == IdentitySimilarity::correlation ? "correlation" : "dot";
}

namespace {
constexpr double kTieTolerance = 1e-12;
}  // namespace

IdentityDecoding decode_identity(const Context& ctx, const Matrix& repeats, const std::vector<std::int64_t>& rows,
                                 bool all_rows, IdentitySimilarity similarity) {
  // 1-2. z-scores per neuron and the summed repeat-1 x repeat-2 products of this rank's query columns;
  //      for correlation each population vector is also centred over neurons.
  const CrossRepeatProducts cp = cross_repeat_products(
      ctx, repeats, rows, all_rows,
      similarity == IdentitySimilarity::correlation ? CrossTransform::zscore_centred : CrossTransform::zscore);
  const std::int64_t s_count = cp.stimuli, n = cp.neurons;
  const std::vector<double>& norm2 = cp.norm2;
  const Range mine = cp.queries;
  IdentityDecoding out;
  out.neurons = cp.neurons;
  out.zero_variance_neurons = cp.zero_variance;

  // 3. Argmax per query. A correlation whose population vector has no variance over neurons is undefined
  //    (relative to the z-scores' scale, m of them each of variance ~1).
  const double tiny = 1e-12 * static_cast<double>(std::max<std::int64_t>(n, 1));
  const auto defined = [&](std::int64_t j) {
    return similarity == IdentitySimilarity::dot || norm2[static_cast<std::size_t>(j)] > tiny;
  };
  std::vector<std::int32_t> predicted, true_rank;
  std::vector<double> true_sim;
  const double nan = std::numeric_limits<double>::quiet_NaN();
  for (std::int64_t s = mine.begin; s < mine.end; ++s) {
    const double* col = cp.columns.data() + (s - mine.begin) * s_count;
    std::vector<double> value(static_cast<std::size_t>(s_count), nan);
    double top = -std::numeric_limits<double>::infinity();
    if (defined(s_count + s)) {
      const double norm_s = std::sqrt(norm2[static_cast<std::size_t>(s_count + s)]);
      for (std::int64_t t = 0; t < s_count; ++t) {
        if (!defined(t)) continue;
        const double v = similarity == IdentitySimilarity::dot
                             ? col[t]
                             : col[t] / (std::sqrt(norm2[static_cast<std::size_t>(t)]) * norm_s);
        value[static_cast<std::size_t>(t)] = v;
        top = std::max(top, v);
      }
    }
    // Values within rounding of the maximum tie (small subsets tie exactly: two neurons correlate +-1),
    // and ties go to the lowest index, so the summation order of the reduction never decides.
    const double eps = kTieTolerance * std::max(1.0, std::abs(top));
    std::int32_t best = -1;
    for (std::int64_t t = 0; t < s_count && best < 0; ++t)
      if (value[static_cast<std::size_t>(t)] >= top - eps) best = static_cast<std::int32_t>(t);
    predicted.push_back(best);
    const double own = value[static_cast<std::size_t>(s)];
    true_sim.push_back(own);
    std::int32_t above = 0;
    if (std::isnan(own)) {
      above = static_cast<std::int32_t>(s_count);
    } else {
      for (double v : value) above += v > own + eps ? 1 : 0;
    }
    true_rank.push_back(above);
  }
  out.predicted = allgather_blocks(ctx, predicted, MPI_INT32_T);
  out.true_similarity = allgather_blocks(ctx, true_sim, MPI_DOUBLE);
  out.true_rank = allgather_blocks(ctx, true_rank, MPI_INT32_T);
  std::int64_t correct = 0;
  for (std::int64_t s = 0; s < s_count; ++s) {
    correct += out.predicted[static_cast<std::size_t>(s)] == s ? 1 : 0;
    out.undecided += out.predicted[static_cast<std::size_t>(s)] < 0 ? 1 : 0;
  }
  out.accuracy = static_cast<double>(correct) / static_cast<double>(s_count);
  return out;
}

std::vector<std::int64_t> draw_neuron_subset(std::int64_t n, std::int64_t m, std::uint64_t seed, std::int64_t draw) {
  if (m < 0 || m > n) throw InternalError(fmt::format("cannot draw {} of {} neurons", m, n));
  // Partial Fisher-Yates over 0..n-1: position i takes a uniform pick among the n - i not yet taken.
  std::vector<std::int64_t> pool(static_cast<std::size_t>(n));
  std::iota(pool.begin(), pool.end(), 0);
  const CounterRng rng(seed);
  for (std::int64_t i = 0; i < m; ++i) {
    const auto j = i + static_cast<std::int64_t>(rng.below(static_cast<std::uint64_t>(n - i), Stream::neuron_subset,
                                                           static_cast<std::uint32_t>(m), static_cast<std::uint32_t>(draw),
                                                           static_cast<std::uint32_t>(i)));
    std::swap(pool[static_cast<std::size_t>(i)], pool[static_cast<std::size_t>(j)]);
  }
  pool.resize(static_cast<std::size_t>(m));
  std::sort(pool.begin(), pool.end());
  return pool;
}

IdentityCurve identity_curve(const Context& ctx, const Matrix& repeats, std::int64_t neuron_offset,
                             std::int64_t neurons_total, const IdentityCurveOptions& options) {
  IdentityCurve c;
  for (std::int64_t m : options.subset_sizes)
    if (m >= 1 && m <= neurons_total && std::find(c.sizes.begin(), c.sizes.end(), m) == c.sizes.end()) c.sizes.push_back(m);
  const int draws = std::max(1, options.draws);
  Progress progress("decode-identity: neuron subsets", c.sizes.size() * static_cast<std::size_t>(draws));
  for (std::int64_t m : c.sizes) {
    double first = 0;
    std::int64_t first_undecided = 0;
    for (int d = 0; d < draws; ++d) {
      if (m == neurons_total && d > 0) {  // every draw of the whole population is the same set
        c.accuracy.push_back(first);
        c.undecided.push_back(first_undecided);
        progress.advance();
        continue;
      }
      std::vector<std::int64_t> local;
      for (std::int64_t g : draw_neuron_subset(neurons_total, m, options.seed, d))
        if (g >= neuron_offset && g < neuron_offset + repeats.rows()) local.push_back(g - neuron_offset);
      const IdentityDecoding r = decode_identity(ctx, repeats, local, false, options.similarity);
      c.accuracy.push_back(r.accuracy);
      c.undecided.push_back(r.undecided);
      if (d == 0) {
        first = r.accuracy;
        first_undecided = r.undecided;
      }
      progress.advance();
    }
    const double* a = c.accuracy.data() + (c.accuracy.size() - static_cast<std::size_t>(draws));
    const double mean = std::accumulate(a, a + draws, 0.0) / draws;
    double var = 0;
    for (int d = 0; d < draws; ++d) var += (a[d] - mean) * (a[d] - mean);
    c.mean.push_back(mean);
    c.std.push_back(draws > 1 ? std::sqrt(var / (draws - 1)) : 0.0);
  }
  progress.finish();
  return c;
}

}  // namespace popcode
