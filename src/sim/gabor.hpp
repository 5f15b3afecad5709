#pragma once
// Gabor filters: the linear stage of the simulator's linear-nonlinear receptive fields.
//
// g(x, y) = exp(-(u^2 + (v / aspect)^2) / (2 sigma^2)) cos(2 pi freq u + phase), with u, v the pixel
// offsets from the centre rotated by theta; the envelope-weighted mean is removed (no response to uniform
// luminance) and the filter has unit L2 norm.
#include <cstdint>
#include <span>

#include "src/rng.hpp"

namespace popcode::sim {

struct GaborParams {
  double cx = 0, cy = 0;  // centre, pixels (x = column, y = row)
  double theta = 0;       // orientation, radians
  double freq = 0;        // cycles per pixel
  double phase = 0;       // radians
  double sigma = 0;       // envelope width, pixels
  double aspect = 1.5;    // envelope elongation along the bars
};
inline constexpr int kGaborParamCount = 7;

// Orientation, frequency, phase and size drawn for filter `index` of `stream`, at the given centre.
// Frequencies and sizes scale with the image height (defaults are for 36 rows).
GaborParams random_gabor(const CounterRng& rng, Stream stream, std::uint32_t index, double cx, double cy,
                         std::int64_t height);
// Writes the filter (height x width, row-major) into `out`.
void render_gabor(const GaborParams& p, std::int64_t height, std::int64_t width, std::span<double> out);

}  // namespace popcode::sim
