#pragma once
// Natural-like images for the simulator: dead leaves (Matheron; Lee, Mumford & Huang 2001).
//
// Each image is a stack of opaque elliptical "leaves" of uniform random gray level whose sizes follow
// p(r) ~ r^-3, which gives the 1/f^2 power spectrum and occlusion edges of natural images. Each image has
// a class; a class sets the preferred orientation of its leaves (pi c / classes, spread 0.4 rad), so
// classes are visible in the images and decodable from orientation-tuned neurons.
// Every image is a pure function of (seed, index): any rank can render any image.
#include <cstdint>
#include <span>

#include "src/rng.hpp"

namespace popcode::sim {

struct ImageGeometry {
  std::int64_t height = 36;
  std::int64_t width = 64;
  int leaves = 150;
};

// The class of image `index` (uniform over [0, classes)).
std::int32_t image_class(const CounterRng& rng, std::int64_t index, int classes);
// Preferred leaf orientation of a class, radians in [0, pi).
double class_orientation(std::int32_t cls, int classes);
// Renders image `index` of class `cls` into `out` (height x width, row-major), values in [0, 1].
void render_dead_leaves(const CounterRng& rng, std::int64_t index, std::int32_t cls, int classes,
                        const ImageGeometry& g, std::span<float> out);

}  // namespace popcode::sim
