#include "src/sim/gabor.hpp"

#include <cmath>

namespace popcode::sim {

GaborParams random_gabor(const CounterRng& rng, Stream stream, std::uint32_t index, double cx, double cy,
                         std::int64_t height) {
  const double scale = static_cast<double>(height) / 36.0;
  const auto u = rng.uniform2(stream, index, 1);
  const auto v = rng.uniform2(stream, index, 2);
  GaborParams p;
  p.cx = cx;
  p.cy = cy;
  p.theta = M_PI * u[0];
  p.phase = 2.0 * M_PI * u[1];
  p.freq = (0.04 + 0.12 * v[0]) / scale;
  p.sigma = (2.5 + 3.5 * v[1]) * scale;
  p.aspect = 1.5;
  return p;
}

void render_gabor(const GaborParams& p, std::int64_t height, std::int64_t width, std::span<double> out) {
  const double c = std::cos(p.theta), s = std::sin(p.theta);
  double sum_g = 0, sum_env = 0;
  for (std::int64_t y = 0; y < height; ++y) {
    for (std::int64_t x = 0; x < width; ++x) {
      const double dx = static_cast<double>(x) - p.cx, dy = static_cast<double>(y) - p.cy;
      const double u = dx * c + dy * s, v = -dx * s + dy * c;
      const double env = std::exp(-(u * u + (v / p.aspect) * (v / p.aspect)) / (2 * p.sigma * p.sigma));
      const double g = env * std::cos(2 * M_PI * p.freq * u + p.phase);
      out[static_cast<std::size_t>(y * width + x)] = g;
      sum_g += g;
      sum_env += env;
    }
  }
  // Remove the envelope-weighted DC component, then normalise.
  const double dc = sum_env > 0 ? sum_g / sum_env : 0.0;
  double norm2 = 0;
  for (std::int64_t y = 0; y < height; ++y) {
    for (std::int64_t x = 0; x < width; ++x) {
      const double dx = static_cast<double>(x) - p.cx, dy = static_cast<double>(y) - p.cy;
      const double u = dx * c + dy * s, v = -dx * s + dy * c;
      const double env = std::exp(-(u * u + (v / p.aspect) * (v / p.aspect)) / (2 * p.sigma * p.sigma));
      double& g = out[static_cast<std::size_t>(y * width + x)];
      g -= dc * env;
      norm2 += g * g;
    }
  }
  const double inv = norm2 > 0 ? 1.0 / std::sqrt(norm2) : 0.0;
  for (double& g : out) g *= inv;
}

}  // namespace popcode::sim
