#include "solvers/neuron_stats.hpp"

#include <cmath>
#include <limits>

namespace popcode {

NeuronStats neuron_reliability(const Matrix& repeats) {
  const std::int64_t n = repeats.rows(), s = repeats.cols() / 2;
  std::vector<double> m1(n, 0.0), m2(n, 0.0), v1(n, 0.0), v2(n, 0.0), c12(n, 0.0), vd(n, 0.0);
  // Means, then centred second moments, accumulated column by column (contiguous access).
  for (std::int64_t j = 0; j < s; ++j) {
    auto a1 = repeats.col(j), a2 = repeats.col(s + j);
    for (std::int64_t i = 0; i < n; ++i) {
      m1[i] += a1[i];
      m2[i] += a2[i];
    }
  }
  for (std::int64_t i = 0; i < n; ++i) {
    m1[i] /= static_cast<double>(s);
    m2[i] /= static_cast<double>(s);
  }
  for (std::int64_t j = 0; j < s; ++j) {
    auto a1 = repeats.col(j), a2 = repeats.col(s + j);
    for (std::int64_t i = 0; i < n; ++i) {
      const double x = a1[i] - m1[i], y = a2[i] - m2[i];
      v1[i] += x * x;
      v2[i] += y * y;
      c12[i] += x * y;
      vd[i] += (x - y) * (x - y);  // var(A1 - A2): the difference's mean is m1 - m2
    }
  }
  NeuronStats out;
  out.reliability.resize(n);
  out.noise_variance.resize(n);
  out.snr.resize(n);
  out.signal_fraction.resize(n);
  const double inv = 1.0 / static_cast<double>(s);
  const double nan = std::numeric_limits<double>::quiet_NaN();
  for (std::int64_t i = 0; i < n; ++i) {
    const double var1 = v1[i] * inv, var2 = v2[i] * inv, cov = c12[i] * inv;
    const double noise = vd[i] * inv / 2.0;
    out.reliability[i] = var1 > 0 && var2 > 0 ? cov / std::sqrt(var1 * var2) : nan;
    out.noise_variance[i] = noise;
    out.snr[i] = noise > 0 ? (var1 + var2 - 2.0 * noise) / (2.0 * noise) : nan;
    out.signal_fraction[i] = var1 + var2 > 0 ? cov / (0.5 * (var1 + var2)) : nan;
  }
  return out;
}

}  // namespace popcode
