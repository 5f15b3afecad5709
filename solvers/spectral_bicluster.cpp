#include "solvers/spectral_bicluster.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

#include "solvers/cross_repeat.hpp"
#include "src/errors.hpp"

namespace popcode {

BiclusterNormalisation parse_bicluster_normalisation(const std::string& name) {
  if (name == "bistochastic") return BiclusterNormalisation::bistochastic;
  if (name == "scale") return BiclusterNormalisation::scale;
  if (name == "log") return BiclusterNormalisation::log;
  throw UsageError(fmt::format("unknown biclustering normalisation '{}' (bistochastic, scale or log)", name));
}

const char* bicluster_normalisation_name(BiclusterNormalisation m) {
  switch (m) {
    case BiclusterNormalisation::bistochastic: return "bistochastic";
    case BiclusterNormalisation::scale: return "scale";
    case BiclusterNormalisation::log: return "log";
  }
  return "?";
}

namespace {

// k-means of small replicated points (z: features x points, the same on every rank): rank 0 holds them as
// the features of the feature-split k-means, so the labels come back replicated.
KmeansResult kmeans_replicated(const Context& ctx, const Matrix& z, std::int64_t k, const KmeansOptions& base) {
  KmeansOptions o = base;
  o.k = k;
  return kmeans(ctx, ctx.root() ? z : Matrix(0, z.cols()), o);
}

// One scaling step a <- Dr^-1/2 a Dc^-1/2 on the neuron block (images are columns); returns the squared
// Frobenius change summed over ranks.
double scale_step(const Context& ctx, Matrix& a) {
  const std::int64_t n = a.rows(), s = a.cols();
  std::vector<double> image_sum(static_cast<std::size_t>(s), 0.0), neuron_sum(static_cast<std::size_t>(n), 0.0);
  for (std::int64_t j = 0; j < s; ++j)
    for (std::int64_t i = 0; i < n; ++i) {
      image_sum[static_cast<std::size_t>(j)] += a(i, j);
      neuron_sum[static_cast<std::size_t>(i)] += a(i, j);
    }
  ctx.allreduce_sum(image_sum);
  auto inv_sqrt = [](double v) { return v > 0 ? 1.0 / std::sqrt(v) : 0.0; };
  for (double& v : image_sum) v = inv_sqrt(v);
  for (double& v : neuron_sum) v = inv_sqrt(v);
  double change = 0;
  for (std::int64_t j = 0; j < s; ++j)
    for (std::int64_t i = 0; i < n; ++i) {
      const double next = a(i, j) * image_sum[static_cast<std::size_t>(j)] * neuron_sum[static_cast<std::size_t>(i)];
      change += (a(i, j) - next) * (a(i, j) - next);
      a(i, j) = next;
    }
  return ctx.sum(change);
}

// The indices of the n_best vectors (columns of v, points x m) closest to their own piecewise-constant
// k-means approximation with `clusters` values.
std::vector<std::int64_t> best_piecewise(const Context& ctx, const Matrix& v, std::int64_t n_best, std::int64_t clusters,
                                         const KmeansOptions& ko) {
  const std::int64_t points = v.rows(), m = v.cols();
  std::vector<double> dist(static_cast<std::size_t>(m));
  for (std::int64_t c = 0; c < m; ++c) {
    Matrix one(1, points);
    for (std::int64_t p = 0; p < points; ++p) one(0, p) = v(p, c);
    const KmeansResult km = kmeans_replicated(ctx, one, clusters, ko);
    // Piecewise values are the cluster means (centres live on rank 0 only, so recompute them here).
    std::vector<double> sum(static_cast<std::size_t>(clusters), 0.0), count(static_cast<std::size_t>(clusters), 0.0);
    for (std::int64_t p = 0; p < points; ++p) {
      sum[static_cast<std::size_t>(km.labels[static_cast<std::size_t>(p)])] += v(p, c);
      count[static_cast<std::size_t>(km.labels[static_cast<std::size_t>(p)])] += 1;
    }
    double d = 0;
    for (std::int64_t p = 0; p < points; ++p) {
      const auto l = static_cast<std::size_t>(km.labels[static_cast<std::size_t>(p)]);
      const double e = v(p, c) - sum[l] / count[l];
      d += e * e;
    }
    dist[static_cast<std::size_t>(c)] = std::sqrt(d);
  }
  std::vector<std::int64_t> order(static_cast<std::size_t>(m));
  std::iota(order.begin(), order.end(), std::int64_t{0});
  std::stable_sort(order.begin(), order.end(),
                   [&](std::int64_t a, std::int64_t b) { return dist[static_cast<std::size_t>(a)] < dist[static_cast<std::size_t>(b)]; });
  order.resize(static_cast<std::size_t>(n_best));
  return order;
}

}  // namespace

BiclusterResult spectral_bicluster(const Context& ctx, const Matrix& x, const BiclusterOptions& options) {
  const std::int64_t n = x.rows(), s = x.cols();
  const std::int64_t neurons = ctx.sum(n);
  std::int64_t bad = 0;
  double lo = std::numeric_limits<double>::infinity();
  for (std::int64_t j = 0; j < s; ++j)
    for (const double v : x.col(j)) {
      bad += std::isfinite(v) ? 0 : 1;
      lo = std::min(lo, v);
    }
  bad = ctx.sum(bad);
  if (bad > 0) throw InputError(fmt::format("spectral biclustering needs finite responses; {} values are NaN or infinite", bad), true);
  lo = ctx.min(lo);

  const bool log_method = options.method == BiclusterNormalisation::log;
  const std::int64_t discard = log_method ? 0 : 1;
  const std::int64_t n_sv = options.n_components + discard;
  if (options.n_components < 1 || options.n_best < 1 || options.n_best > options.n_components)
    throw InputError(fmt::format("spectral biclustering: n_best = {} must be between 1 and n_components = {}", options.n_best,
                                 options.n_components),
                     true);
  if (n_sv > std::min(s, neurons))
    throw InputError(fmt::format("spectral biclustering with {} components needs {} singular vectors, but the matrix is {} "
                                 "images x {} neurons",
                                 options.n_components, n_sv, s, neurons),
                     true);
  if (options.image_clusters < 2 || options.image_clusters >= s || options.neuron_clusters < 2 ||
      options.neuron_clusters >= neurons)
    throw InputError(fmt::format("spectral biclustering into {} x {} biclusters needs more than that many images and neurons; "
                                 "the matrix is {} images x {} neurons",
                                 options.image_clusters, options.neuron_clusters, s, neurons),
                     true);

  BiclusterResult out;
  // 1. Normalisation.
  Matrix a(n, s);
  const double min_value = log_method ? 1.0 : 0.0;
  out.shift = lo < min_value ? min_value - lo : 0.0;
  for (std::int64_t j = 0; j < s; ++j)
    for (std::int64_t i = 0; i < n; ++i) a(i, j) = x(i, j) + out.shift;
  if (log_method) {
    std::vector<double> image_mean(static_cast<std::size_t>(s), 0.0), neuron_mean(static_cast<std::size_t>(n), 0.0);
    for (std::int64_t j = 0; j < s; ++j)
      for (std::int64_t i = 0; i < n; ++i) {
        a(i, j) = std::log(a(i, j));
        image_mean[static_cast<std::size_t>(j)] += a(i, j);
        neuron_mean[static_cast<std::size_t>(i)] += a(i, j);
      }
    ctx.allreduce_sum(image_mean);
    double grand = 0;
    for (double& v : image_mean) {
      grand += v;
      v /= static_cast<double>(neurons);
    }
    grand /= static_cast<double>(neurons) * static_cast<double>(s);
    for (double& v : neuron_mean) v /= static_cast<double>(s);
    for (std::int64_t j = 0; j < s; ++j)
      for (std::int64_t i = 0; i < n; ++i)
        a(i, j) += grand - image_mean[static_cast<std::size_t>(j)] - neuron_mean[static_cast<std::size_t>(i)];
  } else if (options.method == BiclusterNormalisation::scale) {
    scale_step(ctx, a);
    out.normalisation_steps = 1;
  } else {
    const double tol2 = options.bistochastic_tol * options.bistochastic_tol;
    for (int step = 0; step < options.bistochastic_max_iter; ++step) {
      const double change = scale_step(ctx, a);
      out.normalisation_steps = step + 1;
      if (change < tol2) break;
    }
  }

  double norm2 = 0;
  for (const double v : a.values()) norm2 += v * v;
  if (!(ctx.sum(norm2) > 0))
    throw InputError(fmt::format("spectral biclustering: the normalised {} images x {} neurons matrix is zero (every response "
                                 "equal); there is no structure to bicluster",
                                 s, neurons),
                     true);

  // 2. Singular vectors: neurons are the rows here, so u_local is the neuron side and w the image side.
  const TruncatedSvd svd = leading_singular_triplets(ctx, a, n_sv, options.svd);
  a = Matrix();
  out.singular_values = svd.singular_values;
  out.method_used = svd.method_used;
  const std::int64_t m = options.n_components;
  Matrix image_vectors(s, m);
  for (std::int64_t c = 0; c < m; ++c)
    for (std::int64_t j = 0; j < s; ++j) image_vectors(j, c) = svd.w(j, c + discard);
  std::vector<double> mine(static_cast<std::size_t>(n * m));
  for (std::int64_t i = 0; i < n; ++i)
    for (std::int64_t c = 0; c < m; ++c) mine[static_cast<std::size_t>(i * m + c)] = svd.u_local(i, c + discard);
  const std::vector<double> gathered = allgather_blocks(ctx, mine, MPI_DOUBLE);
  Matrix neuron_vectors(neurons, m);
  for (std::int64_t i = 0; i < neurons; ++i)
    for (std::int64_t c = 0; c < m; ++c) neuron_vectors(i, c) = gathered[static_cast<std::size_t>(i * m + c)];

  // 3. The vectors best fitted by piecewise-constant ones.
  out.best_image_vectors = best_piecewise(ctx, image_vectors, options.n_best, options.image_clusters, options.kmeans);
  out.best_neuron_vectors = best_piecewise(ctx, neuron_vectors, options.n_best, options.neuron_clusters, options.kmeans);

  // 4. Project X on the kept vectors and cluster. Images: X (images x neurons) times the kept neuron vectors,
  // a sum over neurons (one allreduce). Neurons: X^T times the kept image vectors, local rows, then gathered.
  const std::int64_t b = options.n_best;
  const std::int64_t first = ctx.exclusive_prefix(n);
  std::vector<double> image_proj(static_cast<std::size_t>(b * s), 0.0);
  for (std::int64_t c = 0; c < b; ++c) {
    const std::int64_t vec = out.best_neuron_vectors[static_cast<std::size_t>(c)];
    for (std::int64_t j = 0; j < s; ++j) {
      double acc = 0;
      for (std::int64_t i = 0; i < n; ++i) acc += x(i, j) * neuron_vectors(first + i, vec);
      image_proj[static_cast<std::size_t>(c + j * b)] = acc;
    }
  }
  ctx.allreduce_sum(image_proj);
  Matrix zi(b, s);
  std::copy(image_proj.begin(), image_proj.end(), zi.data());
  out.image_labels = kmeans_replicated(ctx, zi, options.image_clusters, options.kmeans).labels;

  std::vector<double> neuron_proj(static_cast<std::size_t>(n * b), 0.0);
  for (std::int64_t c = 0; c < b; ++c) {
    const std::int64_t vec = out.best_image_vectors[static_cast<std::size_t>(c)];
    for (std::int64_t j = 0; j < s; ++j) {
      const double w = image_vectors(j, vec);
      for (std::int64_t i = 0; i < n; ++i) neuron_proj[static_cast<std::size_t>(c + i * b)] += x(i, j) * w;
    }
  }
  const std::vector<double> all_proj = allgather_blocks(ctx, neuron_proj, MPI_DOUBLE);
  Matrix zn(b, neurons);
  std::copy(all_proj.begin(), all_proj.end(), zn.data());
  const KmeansResult kn = kmeans_replicated(ctx, zn, options.neuron_clusters, options.kmeans);
  out.neuron_labels.assign(kn.labels.begin() + first, kn.labels.begin() + first + n);
  return out;
}

}  // namespace popcode
