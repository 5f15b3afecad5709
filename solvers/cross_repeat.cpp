#include "solvers/cross_repeat.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <numeric>

#include "solvers/dense.hpp"

namespace popcode {

CrossRepeatProducts cross_repeat_products(const Context& ctx, const Matrix& repeats, const std::vector<std::int64_t>& rows,
                                          bool all_rows, CrossTransform transform) {
  const std::int64_t s_count = repeats.cols() / 2;
  if (repeats.cols() % 2 != 0 || s_count < 1)
    throw InternalError(fmt::format("cross-repeat products need [repeat 1 | repeat 2] columns, got {}", repeats.cols()));
  std::vector<std::int64_t> chosen;
  if (all_rows) {
    chosen.resize(static_cast<std::size_t>(repeats.rows()));
    std::iota(chosen.begin(), chosen.end(), 0);
  } else {
    chosen = rows;
  }
  const auto m = static_cast<std::int64_t>(chosen.size());

  // The chosen rows (m x 2S, column-major), then transformed in place.
  Matrix z(m, 2 * s_count);
  for (std::int64_t j = 0; j < 2 * s_count; ++j)
    for (std::int64_t k = 0; k < m; ++k) z(k, j) = repeats(chosen[static_cast<std::size_t>(k)], j);
  std::int64_t zero_variance = 0;
  if (transform != CrossTransform::raw) {
    for (int r = 0; r < 2; ++r) {
      const std::int64_t c0 = r * s_count;
      const RowMoments mo = row_moments(z, c0, s_count);
      std::vector<double> sd(static_cast<std::size_t>(m), 0.0);
      for (std::int64_t k = 0; k < m; ++k) {
        const auto kk = static_cast<std::size_t>(k);
        sd[kk] = s_count > 1 ? std::sqrt(mo.ssd[kk] / static_cast<double>(s_count - 1)) : 0.0;
        if (!(sd[kk] > 0) || !std::isfinite(sd[kk])) {
          sd[kk] = 0;  // the neuron is 0 in this repeat
          ++zero_variance;
        }
      }
      for (std::int64_t j = c0; j < c0 + s_count; ++j)
        for (std::int64_t k = 0; k < m; ++k) {
          const auto kk = static_cast<std::size_t>(k);
          z(k, j) = sd[kk] > 0 ? (z(k, j) - mo.mean[kk]) / sd[kk] : 0.0;
        }
    }
  }

  CrossRepeatProducts out;
  out.stimuli = s_count;
  std::int64_t counts[2] = {m, zero_variance};
  ctx.allreduce_sum(std::span<std::int64_t>(counts, 2));
  out.neurons = counts[0];
  out.zero_variance = counts[1];

  if (transform == CrossTransform::zscore_centred) {
    // Centre each population vector over all neurons: its mean is a sum over ranks.
    std::vector<double> colsum(static_cast<std::size_t>(2 * s_count), 0.0);
    for (std::int64_t j = 0; j < 2 * s_count; ++j)
      for (double v : z.col(j)) colsum[static_cast<std::size_t>(j)] += v;
    ctx.allreduce_sum(colsum);
    const double n = static_cast<double>(std::max<std::int64_t>(out.neurons, 1));
    for (std::int64_t j = 0; j < 2 * s_count; ++j)
      for (double& v : z.col(j)) v -= colsum[static_cast<std::size_t>(j)] / n;
  }
  out.norm2.assign(static_cast<std::size_t>(2 * s_count), 0.0);
  for (std::int64_t j = 0; j < 2 * s_count; ++j)
    for (double v : z.col(j)) out.norm2[static_cast<std::size_t>(j)] += v * v;
  ctx.allreduce_sum(out.norm2);

  // Local A^T B (S x S; column s = every repeat-1 stimulus against repeat-2 stimulus s), summed onto the
  // owners of the columns.
  Matrix g(s_count, s_count);
  if (m > 0)
    gemm_raw(Trans::yes, Trans::no, s_count, s_count, m, 1.0, z.data(), m, z.data() + m * s_count, m, 0.0, g.data(), s_count);
  z = Matrix();
  const BlockLayout queries(s_count, ctx.size());
  std::vector<int> recv_counts(static_cast<std::size_t>(ctx.size()));
  for (int r = 0; r < ctx.size(); ++r) recv_counts[static_cast<std::size_t>(r)] = static_cast<int>(queries.count(r) * s_count);
  out.queries = queries.range(ctx.rank());
  out.columns.assign(static_cast<std::size_t>(std::max<std::int64_t>(1, out.queries.size() * s_count)), 0.0);
  mpi_check(MPI_Reduce_scatter(g.data(), out.columns.data(), recv_counts.data(), MPI_DOUBLE, MPI_SUM, ctx.comm()),
            "MPI_Reduce_scatter");
  out.columns.resize(static_cast<std::size_t>(out.queries.size() * s_count));
  return out;
}

}  // namespace popcode
