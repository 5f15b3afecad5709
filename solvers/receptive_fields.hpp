#pragma once
// Linear receptive fields of every neuron from stimulus images and repeat-averaged responses.
//
// What it computes (Stringer et al. 2019, anchor fitRFs/fitLowRankRFs.m with CanonCor2):
//   images   each image minus the grand mean over all images and pixels, then scaled to unit L2 norm (the
//            anchor: (img - 128) / 64, then normc; the fixed gray 128 is specific to 8-bit files, so popcode
//            subtracts the measured mean gray instead).
//   Y        the mean of the two repeats, minus each neuron's mean over all images (b0).
//   RRR      Y's top `response_pcs` (100) principal components, Y = A B C^T; V = A B (images x PCs). On the
//            first ceil(S/2) images (train), CanonCor2: CXX = cov(X) + mu I, CYX = cov(V, X),
//            M = CYX CXX^-1/2 = D s E^T, a = D s, b = CXX^-1/2 E; kept rank 25. The RF of neuron i is
//            b a^T C_i, its prediction on the test images X_test^T b a^T C_i (uncentred images, as the anchor).
//   ridge    per neuron, full rank in pixels: beta_i = (cov(X) + mu_r I)^-1 cov(X, y_i) on the train images.
//   STA      response-weighted mean image over all images, sum_s w_is x_s / sum_s w_is, with images centred per
//            pixel and weights w_is = y_is - min_s y_is (so they are nonnegative, like firing rates). Because
//            the images are centred, the shift changes only the scale, never the shape: the map is
//            proportional to X_centred y_i.
//   metrics  on the test images, with r1, r2 the two repeats minus b0 and p the prediction:
//            normalised variance explained 1 - sum(res1 res2) / sum(r1 r2) (res_k = r_k - p) over all neurons
//            and test images, at every rank 1..rank (the rank sweep); per neuron 1 - mean((p - y)^2) / mean(y^2);
//            the population value 1 - mean_i mean_s (p - y)^2 / mean_i mean_s y^2 (the anchor's R2test).
//
// Deliberate differences: the ridge mu = lambda x mean pixel variance of the train images (CanonCor2's
// lambda is absolute; relative to the pixel variance it does not depend on the image normalisation); CXX's
// inverse square root is applied through the thin SVD of the centred train images, X_c = W diag(sigma) U^T:
// CXX^-1/2 = W diag(d) W^T + mu^-1/2 (I - W W^T), d_j = (sigma_j^2 / (n - 1) + mu)^-1/2, and CYX lies in
// span(W), so M = [V_c^T U diag(sigma d) / (n - 1)] W^T and b = W diag(d) E exactly, without the P x P
// matrices (P = pixels; 18,360 for the real images). tests/peer/test_rf_peer.py checks this against the
// explicit P x P CanonCor2 in NumPy.
//
// Distribution and memory: neurons are split over ranks (the preprocessing blocks). The images are
// replicated: the S x P images and the train SVD's W (P x min(P, ntr)) and U^T (ntr x ntr), about 2 S P doubles
// per rank (94 MB for 2,800 images of 36 x 64 px); no centred or test copy of them is made (products read the
// images in place, centring is a rank-one correction). Per neuron: Y and the test predictions (S + S/2 doubles)
// and the three maps (3 P doubles). Measured on the benchmark (10,000 neurons, 2 ranks): 855-875 MiB peak per
// rank, preprocessing's blocks included (bench/README.md). The only collective
// products are the S x S Gram of the response PCs (one allreduce, solvers/distributed_svd.hpp) and scalar
// sums for the metrics; RF maps are local (P doubles per local neuron per method). The two replicated
// decompositions (the Gram's leading eigenpairs, the train images' SVD) are each computed on one rank, the
// first and the last, and broadcast (about 8 (S k + P ntr + ntr^2) bytes), so at two ranks or more they run
// side by side; the centred train copy for the SVD exists on the last rank only.
#include <cstdint>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "solvers/matrix.hpp"
#include "src/context.hpp"

namespace popcode {

struct RfOptions {
  std::int64_t rank = 25;           // RRR components kept (the anchor: 25)
  std::int64_t response_pcs = 100;  // response PCs the RRR predicts (the anchor: 100)
  double lambda = 0.005;            // RRR ridge, relative to the mean pixel variance of the train images
  double ridge_lambda = 10;         // the pixel ridge's, same scale (chosen on planted RFs, docs/results.md)
  std::int64_t train_images = 0;    // 0: the first ceil(S / 2) images, as the anchor
  double centre_smooth = 1.5;       // Gaussian s.d. (pixels) of the RF-energy smoothing that locates centres
  std::string centre_map = "ridge"; // map whose energy locates the centres: ridge, rrr or sta
};

struct RfFit {
  std::int64_t train = 0, test = 0, rank = 0, response_pcs = 0, pixels = 0;
  double mu = 0, ridge_mu = 0;              // absolute ridges added to CXX's diagonal (RRR, pixel ridge)
  // RRR
  std::vector<double> rank_sweep;           // normalised variance explained at ranks 1..rank
  std::vector<double> component_r2;         // CanonCor2's R2: s_j^2 / total variance of the train PCs
  double rrr_variance_explained = 0;        // population value (anchor's R2test), at `rank`
  Matrix rrr_rf;                            // P x n_local: column i is local neuron i's RF
  std::vector<double> rrr_neuron_ve;        // per local neuron, at `rank`
  // ridge
  double ridge_normalized_ve = 0, ridge_variance_explained = 0;
  Matrix ridge_rf;                          // P x n_local
  std::vector<double> ridge_neuron_ve;
  // STA
  Matrix sta_rf;                            // P x n_local
  // RF centres (pixels: x = column, y = row) of the `centre_map` maps
  std::vector<double> centre_x, centre_y;
};

// Collective. `repeats` is the preprocessed block (n_local x 2S, [repeat 1 | repeat 2]); `images` is
// P x S (column s = image of stimulus s, row-major height x width pixels), replicated and already
// normalised (normalise_images). Throws InputError (exit 3) when the sizes make the fit impossible.
RfFit fit_receptive_fields(const Context& ctx, const Matrix& repeats, const Matrix& images, std::int64_t height,
                           std::int64_t width, const RfOptions& options);

// The anchor's image normalisation (see above), in place. Returns the number of constant (zero) images.
std::int64_t normalise_images(Matrix& images);

// Centre of a height x width map (row-major): the maximum of its Gaussian-smoothed energy (rf^2), refined to
// the energy centroid within 2 s.d. of it.
std::pair<double, double> rf_centre(std::span<const double> rf, std::int64_t height, std::int64_t width, double smooth);

// Retinotopy: RF centre against cortical position. Least-squares affine maps centre_x ~ 1 + pos_x + pos_y and
// centre_y ~ 1 + pos_x + pos_y over the neurons with use[i] != 0, from allreduced normal equations.
struct Retinotopy {
  std::int64_t neurons = 0;
  std::vector<double> coef_x, coef_y;  // intercept (px), px per um along cortical x, px per um along cortical y
  double r2_x = 0, r2_y = 0;           // fraction of the centres' variance the maps explain
};
Retinotopy fit_retinotopy(const Context& ctx, std::span<const double> centre_x, std::span<const double> centre_y,
                          std::span<const double> pos_x, std::span<const double> pos_y, std::span<const std::uint8_t> use);

// Pearson correlation of two equal-length vectors (NaN when either is constant).
double pearson(std::span<const double> a, std::span<const double> b);

}  // namespace popcode
