#include "src/sim/images.hpp"

#include <algorithm>
#include <cmath>

namespace popcode::sim {

std::int32_t image_class(const CounterRng& rng, std::int64_t index, int classes) {
  return static_cast<std::int32_t>(rng.below(static_cast<std::uint64_t>(classes), Stream::image_class,
                                             static_cast<std::uint32_t>(index)));
}

double class_orientation(std::int32_t cls, int classes) { return M_PI * cls / classes; }

void render_dead_leaves(const CounterRng& rng, std::int64_t index, std::int32_t cls, int classes,
                        const ImageGeometry& g, std::span<float> out) {
  const auto id = static_cast<std::uint32_t>(index);
  const double h = static_cast<double>(g.height), w = static_cast<double>(g.width);
  const double scale = h / 36.0;  // sizes are set for the default 36 x 64 and scale with the height
  const double rmin = 1.5 * scale, rmax = 0.45 * std::min(h, w);
  const double a2 = 1.0 / (rmin * rmin), b2 = 1.0 / (rmax * rmax);
  const double preferred = class_orientation(cls, classes);
  std::fill(out.begin(), out.end(), static_cast<float>(rng.uniform(Stream::image, id, 0xffffffffu)));
  for (int l = 0; l < g.leaves; ++l) {
    const auto leaf = static_cast<std::uint32_t>(l);
    const auto u0 = rng.uniform2(Stream::image, id, leaf, 0);
    const auto u1 = rng.uniform2(Stream::image, id, leaf, 1);
    const auto n2 = rng.normal2(Stream::image, id, leaf, 2);
    // Radius by inverse CDF of p(r) ~ r^-3 on [rmin, rmax]; elongation in [1, 3] at constant area.
    const double r = 1.0 / std::sqrt(a2 - u0[0] * (a2 - b2));
    const double elong = 1.0 + 2.0 * u0[1];
    const double ax = r * std::sqrt(elong), ay = r / std::sqrt(elong);
    const double theta = preferred + 0.4 * n2[0];
    const double cx = -r + u1[0] * (w + 2 * r), cy = -r + u1[1] * (h + 2 * r);
    const float gray = static_cast<float>(0.5 + 0.5 * std::erf(n2[1] / std::sqrt(2.0)));  // uniform in (0, 1)
    const double c = std::cos(theta), s = std::sin(theta);
    const auto y0 = static_cast<std::int64_t>(std::max(0.0, std::floor(cy - ax)));
    const auto y1 = static_cast<std::int64_t>(std::min(h - 1, std::ceil(cy + ax)));
    const auto x0 = static_cast<std::int64_t>(std::max(0.0, std::floor(cx - ax)));
    const auto x1 = static_cast<std::int64_t>(std::min(w - 1, std::ceil(cx + ax)));
    for (std::int64_t y = y0; y <= y1; ++y) {
      for (std::int64_t x = x0; x <= x1; ++x) {
        const double dx = static_cast<double>(x) - cx, dy = static_cast<double>(y) - cy;
        const double u = (dx * c + dy * s) / ax, v = (-dx * s + dy * c) / ay;
        if (u * u + v * v <= 1.0) out[static_cast<std::size_t>(y * g.width + x)] = gray;
      }
    }
  }
}

}  // namespace popcode::sim
