#pragma once
// Counter-based random numbers (Philox4x32-10 from Random123, Salmon et al. 2011).
//
// A value is a pure function of (seed, stream, a, b, c): the simulator draws "the noise of neuron i at
// presentation p" as counter (noise, i, p, 0), so any rank can generate any neuron's numbers and results
// do not depend on how neurons are split over ranks or in which order they are generated.
#include <Random123/philox.h>

#include <array>
#include <cmath>
#include <cstdint>

namespace popcode {

enum class Stream : std::uint32_t {
  image = 1,          // dead-leaves images
  image_class = 2,    // class of each image
  feature_bank = 3,   // Gabor bank that spans the latent stimulus space
  loading_phase = 4,  // phases of the orthogonal neuron loadings
  permutation = 5,    // neuron permutation behind the loadings
  neuron = 6,         // per-neuron parameters (position, receptive field, noise level, baseline)
  trial_noise = 7,    // private noise per neuron and presentation
  spont_noise = 8,    // private noise per neuron and spontaneous time point
  spont_latent = 9,   // shared spontaneous fluctuations per spontaneous time point
  leak_latent = 10,   // shared fluctuations per presentation (spontaneous activity leaking into responses)
  order = 11,         // presentation order
  shuffle = 12,       // cvPCA repeat swaps
  spont_loading = 13, // neuron loadings on the shared spontaneous dimensions
  neuron_rf = 14,     // each neuron's Gabor receptive field
  neuron_subset = 15, // random neuron subsets of the decoding curves
  kmeans_init = 16,   // k-means++ draws
  train_order = 17,   // order of the training samples in each epoch (solvers/train)
  folds = 18,         // assignment of images to cross-validation folds
  geodesic_sources = 19,  // sampled Dijkstra sources (solvers/geodesic)
  grating = 20,       // grating directions of the orientation experiment (simulator)
  tuning = 21,        // each neuron's von Mises direction tuning (simulator)
  rf_basis = 22,      // the shared Gabor filters of a low-rank receptive-field population (simulator)
  rf_coefficients = 23,  // each neuron's weights on those filters (simulator)
};

class CounterRng {
 public:
  explicit CounterRng(std::uint64_t seed)
      : key_{{static_cast<std::uint32_t>(seed), static_cast<std::uint32_t>(seed >> 32)}} {}

  // Four independent 32-bit words for the counter (stream, a, b, c).
  std::array<std::uint32_t, 4> bits(Stream s, std::uint32_t a, std::uint32_t b = 0, std::uint32_t c = 0) const {
    const r123::Philox4x32::ctr_type ctr = {{static_cast<std::uint32_t>(s), a, b, c}};
    const auto r = r123::Philox4x32()(ctr, key_);
    return {r.v[0], r.v[1], r.v[2], r.v[3]};
  }

  // Two uniforms in the open interval (0, 1), 53 bits each.
  std::array<double, 2> uniform2(Stream s, std::uint32_t a, std::uint32_t b = 0, std::uint32_t c = 0) const {
    const auto w = bits(s, a, b, c);
    return {to_unit((std::uint64_t{w[0]} << 32) | w[1]), to_unit((std::uint64_t{w[2]} << 32) | w[3])};
  }
  double uniform(Stream s, std::uint32_t a, std::uint32_t b = 0, std::uint32_t c = 0) const {
    return uniform2(s, a, b, c)[0];
  }

  // Two independent standard normals (Box-Muller on uniform2).
  std::array<double, 2> normal2(Stream s, std::uint32_t a, std::uint32_t b = 0, std::uint32_t c = 0) const {
    const auto u = uniform2(s, a, b, c);
    const double r = std::sqrt(-2.0 * std::log(u[0]));
    const double t = 6.283185307179586 * u[1];
    return {r * std::cos(t), r * std::sin(t)};
  }
  double normal(Stream s, std::uint32_t a, std::uint32_t b = 0, std::uint32_t c = 0) const {
    return normal2(s, a, b, c)[0];
  }

  // Uniform integer in [0, n) (n >= 1), from 64 random bits (bias below 2^-32 for n < 2^32).
  std::uint64_t below(std::uint64_t n, Stream s, std::uint32_t a, std::uint32_t b = 0, std::uint32_t c = 0) const {
    const auto w = bits(s, a, b, c);
    return ((std::uint64_t{w[0]} << 32) | w[1]) % n;
  }

 private:
  static double to_unit(std::uint64_t x) { return (static_cast<double>(x >> 11) + 0.5) * 0x1.0p-53; }
  r123::Philox4x32::key_type key_;
};

}  // namespace popcode
