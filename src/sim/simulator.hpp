#pragma once
// The synthetic V1 population simulator: popcode's embedded default data (`popcode simulate`).
//
// Model (docs/simulator.md has the full description and the truth it stores):
//   stimulus    "images" (default): dead leaves with classes (src/sim/images.hpp), M images of H x W.
//               "gratings": the orientation experiment. M full-field drifting gratings with directions
//               theta_m uniform on [0, 2 pi) (stored in /orientation, radians; no /images, no classes), and
//               the signal below is replaced by von Mises direction tuning:
//                 f_i(theta) = exp(kappa_i (cos(theta - phi_i) - 1)) + beta_i exp(kappa_i (cos(theta - phi_i - pi) - 1))
//               with preferred direction phi_i uniform, kappa_i uniform on [1, 4] and the opposite-direction
//               amplitude beta_i uniform on [0.2, 1]; s_i(m) = f_i(theta_m) standardised over the M stimuli.
//               Truth: /truth/tuning (phi, kappa, beta per neuron).
//   latent      Z (M x K): orthonormal stimulus features, the leading left singular vectors of a bank of
//               rectified Gabor responses to the images; planted eigenvalues lambda_j = j^-alpha.
//   loadings    w_ij = sqrt(2) cos(2 pi f_j pi(i) / N + theta_j), f_j = j, pi a seeded permutation of the
//               neurons: the columns of W are exactly orthogonal (W^T W = N I), so the population
//               covariance of the power-law part is exactly N c^2 Z diag(lambda) Z^T.
//   signal      s_i(m) = sqrt(1 - rf) c (Z Lambda^1/2 w_i)(m) + sqrt(rf) g_i(m), where g_i is neuron i's own
//               Gabor linear-nonlinear response (centre set by its cortical position: retinotopy),
//               standardised over images. With rf_rank = r > 0 the receptive fields are instead a low-rank
//               population: r shared random Gabor filters B_k (centres uniform over the image) and each
//               neuron's filter sum_k c_ik B_k with c_ik standard normal, so the population's filters span
//               exactly r dimensions, the model reduced-rank regression assumes (truth: /truth/rf_basis,
//               /truth/rf_coefficients in place of /truth/rf_params; no retinotopy).
//   positions   uniform in a 1000 x 1000 um field of view on `planes` planes `plane_spacing` um apart.
//   responses   r_i(p) = b_i + s_i(image_p) + leak sum_k L_ik a_k h_k(p) + sigma_i e_ip, gray screens
//               without s; `repeats` presentations per image in blocks of random order.
//   spontaneous x_i(t) = b_i + sum_k L_ik a_k h'_k(t) + sigma_i e'_it: a shared low-dimensional component
//               (a_k = spont_scale / sqrt(k)) that also leaks into the stimulus responses.
// Deterministic by seed and bitwise identical at any number of ranks: every random number is a counter-
// based draw keyed by what it is for (src/rng.hpp), and products with the replicated stimulus matrices are
// computed in tiles of 256 neurons aligned to global neuron indices, so each neuron's values come from
// the same arithmetic whichever rank computes them. Neurons are generated and written tile by tile: no
// rank holds more than a tile of responses, whatever N is.
#include <cstdint>
#include <string>

#include "src/context.hpp"

namespace popcode::sim {

struct SimulateOptions {
  std::string stimulus = "images";     // images | gratings (orientation experiment)
  std::int64_t neurons = 4000;
  std::int64_t images = 1000;
  std::int64_t repeats = 2;
  std::int64_t height = 36, width = 64;
  double alpha = 1.0;
  std::int64_t latent_dims = 0;        // 0: min(images - 1, feature_bank, (neurons - 1) / 2)
  std::int64_t feature_bank = 1024;
  double rf_fraction = 0.3;            // share of signal variance from each neuron's own Gabor
  std::int64_t rf_rank = 0;            // 0: independent Gabors; r > 0: filters mixed from r shared Gabors
  double noise = 1.0;                  // trial-to-trial noise s.d. relative to the signal s.d.
  std::int64_t spont_dims = 8;
  std::int64_t spont_timepoints = 1000;
  double spont_scale = 2.0;
  double leak = 1.0;
  double gray_fraction = 0.05;
  std::int64_t classes = 16;
  std::int64_t planes = 11;
  double plane_spacing = 35.0;
  std::uint64_t seed = 1;
  bool truth_spectrum = true;          // also compute the realised signal spectrum (one M x M reduction)
};

// Throws UsageError listing every invalid option.
void validate(const SimulateOptions& o);

struct SimulateSummary {
  std::int64_t presentations = 0, latent_dims = 0;
  double alpha_signal = 0;  // power-law exponent of the realised signal spectrum (NaN if not computed)
};

// Collective. Writes the recording to `path` atomically (docs/format.md, with /truth).
SimulateSummary simulate(const Context& ctx, const SimulateOptions& options, const std::string& path);

}  // namespace popcode::sim
