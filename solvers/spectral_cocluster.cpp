#include "solvers/spectral_cocluster.hpp"

#include <fmt/format.h>

#include <cmath>

#include "solvers/cross_repeat.hpp"
#include "src/errors.hpp"

namespace popcode {

CoclusterResult spectral_cocluster(const Context& ctx, const Matrix& x, std::int64_t k, const KmeansOptions& kmeans_options,
                                   SvdMethod method) {
  const std::int64_t n = x.rows(), s = x.cols();
  const std::int64_t neurons = ctx.sum(n);
  std::int64_t negative = 0;
  for (std::int64_t j = 0; j < s; ++j)
    for (const double v : x.col(j)) negative += !(v >= 0);
  negative = ctx.sum(negative);
  if (negative > 0)
    throw InputError(fmt::format("spectral co-clustering needs nonnegative responses; {} values are negative or NaN", negative),
                     true);
  const auto l = static_cast<std::int64_t>(1 + std::ceil(std::log2(static_cast<double>(k))));
  if (k < 2 || l > std::min(s, neurons) || s + neurons <= k)
    throw InputError(fmt::format("spectral co-clustering into {} co-clusters needs {} singular vectors, but the matrix is {} "
                                 "images x {} neurons",
                                 k, l, s, neurons),
                     true);

  // Scale: An = Dr^-1/2 X Dc^-1/2 (rows = images; here transposed, neurons x images).
  std::vector<double> row(static_cast<std::size_t>(s), 0.0), col(static_cast<std::size_t>(n), 0.0);
  for (std::int64_t j = 0; j < s; ++j)
    for (std::int64_t i = 0; i < n; ++i) {
      row[static_cast<std::size_t>(j)] += x(i, j);
      col[static_cast<std::size_t>(i)] += x(i, j);
    }
  ctx.allreduce_sum(row);
  auto inv_sqrt = [](double v) { return v > 0 ? 1.0 / std::sqrt(v) : 0.0; };
  for (double& v : row) v = inv_sqrt(v);
  for (double& v : col) v = inv_sqrt(v);
  Matrix an(n, s);
  for (std::int64_t j = 0; j < s; ++j)
    for (std::int64_t i = 0; i < n; ++i) an(i, j) = x(i, j) * row[static_cast<std::size_t>(j)] * col[static_cast<std::size_t>(i)];

  double norm2 = 0;
  for (const double v : an.values()) norm2 += v * v;
  if (!(ctx.sum(norm2) > 0))
    throw InputError(fmt::format("spectral co-clustering: the scaled {} images x {} neurons matrix is zero (every response "
                                 "equal); there is no structure to co-cluster",
                                 s, neurons),
                     true);
  const TruncatedSvd svd = leading_singular_triplets(ctx, an, l, method);
  CoclusterResult out;
  out.singular_values = svd.singular_values;
  out.method_used = svd.method_used;

  // Z without the first singular pair: image rows replicated, neuron rows gathered to rank 0.
  const std::int64_t f = l - 1;
  std::vector<double> mine(static_cast<std::size_t>(n * f));
  for (std::int64_t i = 0; i < n; ++i)
    for (std::int64_t c = 0; c < f; ++c)
      mine[static_cast<std::size_t>(i * f + c)] = col[static_cast<std::size_t>(i)] * svd.u_local(i, c + 1);
  const std::vector<double> all = allgather_blocks(ctx, mine, MPI_DOUBLE);
  const std::int64_t points = s + neurons;
  Matrix z(ctx.root() ? f : 0, points);
  if (ctx.root()) {
    for (std::int64_t j = 0; j < s; ++j)
      for (std::int64_t c = 0; c < f; ++c) z(c, j) = row[static_cast<std::size_t>(j)] * svd.w(j, c + 1);
    for (std::int64_t i = 0; i < neurons; ++i)
      for (std::int64_t c = 0; c < f; ++c) z(c, s + i) = all[static_cast<std::size_t>(i * f + c)];
  }
  KmeansOptions ko = kmeans_options;
  ko.k = k;
  const KmeansResult km = kmeans(ctx, z, ko);
  out.inertia = km.inertia;
  out.image_labels.assign(km.labels.begin(), km.labels.begin() + s);
  const std::int64_t first = ctx.exclusive_prefix(n);
  out.neuron_labels.assign(km.labels.begin() + s + first, km.labels.begin() + s + first + n);
  return out;
}

}  // namespace popcode
