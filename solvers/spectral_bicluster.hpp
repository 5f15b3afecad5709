#pragma once
// Spectral biclustering of images and neurons (Kluger et al. 2003, "Spectral biclustering of microarray data:
// coclustering genes and conditions"; anchor sklearn.cluster.SpectralBiclustering, sklearn 1.2).
//
// What it computes, for an images x neurons matrix X (the repeat-mean responses), a checkerboard of
// image_clusters x neuron_clusters:
//   1. normalisation (sklearn's `method`):
//      - bistochastic (default): X shifted by its global minimum to be nonnegative, then repeatedly
//        X <- Dr^-1/2 X Dc^-1/2 (row and column sums) until the Frobenius change of one step is below tol
//        (1e-5) or after 1,000 steps;
//      - scale: one such step;
//      - log: X shifted so its minimum is 1, L = log X, then L - row means - column means + grand mean.
//      A row or column summing to zero gets weight 0 (sklearn would produce NaN there).
//   2. the leading n_components singular pairs (plus one, dropped, for bistochastic and scale, whose first
//      pair is the trivial constant one);
//   3. for each image-side vector a 1-D k-means into image_clusters values, and the n_best vectors best
//      approximated by that piecewise-constant vector (Euclidean distance) are kept; the same for the
//      neuron-side vectors with neuron_clusters;
//   4. image labels: k-means (image_clusters) of X projected on the kept neuron-side vectors; neuron labels:
//      k-means (neuron_clusters) of X^T projected on the kept image-side vectors. The projection uses X as
//      given, not the normalised matrix, as sklearn does.
// Every k-means is solvers/kmeans.hpp (k-means++, n_init initialisations). Singular vectors are found exactly
// (SLEPc or the Gram method); sklearn's default is a randomized SVD, which on a spectrum with clear gaps gives
// the same vectors, and the peer test compares with it. (Its svd_method = "arpack" is not a usable reference:
// sklearn 1.2 keeps scipy svds' ascending order there and so drops the smallest pair instead of the trivial
// first one; scikit-learn issue #12863.) The signs of singular vectors do not change any k-means result.
//
// Distribution and memory: X arrives neuron-blocked (this rank's neurons x S). Image (row) sums and means
// are one allreduce of S values per normalisation step; neuron sums are local. The image-side singular
// vectors are replicated by the SVD; the neuron-side ones (N x components) and the neuron projections
// (N x n_best) are allgathered, since these per-neuron vectors are small next to the block. The small 1-D and
// projected k-means problems are held by rank 0 as the features of the feature-split k-means, so their labels
// are replicated. Memory per rank: the normalised copy of the block (n_local x S) plus, during
// bistochastic steps, one S-vector; N (components + n_best) doubles gathered on every rank.
#include <cstdint>
#include <string>
#include <vector>

#include "solvers/distributed_svd.hpp"
#include "solvers/kmeans.hpp"
#include "solvers/matrix.hpp"
#include "src/context.hpp"

namespace popcode {

enum class BiclusterNormalisation { bistochastic, scale, log };
BiclusterNormalisation parse_bicluster_normalisation(const std::string& name);  // "bistochastic", "scale", "log"
const char* bicluster_normalisation_name(BiclusterNormalisation m);

struct BiclusterOptions {
  std::int64_t image_clusters = 3;
  std::int64_t neuron_clusters = 3;
  BiclusterNormalisation method = BiclusterNormalisation::bistochastic;
  std::int64_t n_components = 6;
  std::int64_t n_best = 3;
  int bistochastic_max_iter = 1000;
  double bistochastic_tol = 1e-5;
  KmeansOptions kmeans;  // k is set per use; n_init and seed are taken from here (sklearn: n_init 10)
  SvdMethod svd = SvdMethod::slepc;
};

struct BiclusterResult {
  std::vector<std::int32_t> image_labels;     // S, replicated
  std::vector<std::int32_t> neuron_labels;    // this rank's neurons
  std::vector<double> singular_values;        // of the normalised matrix, all computed (the dropped one included)
  std::vector<std::int64_t> best_image_vectors;   // indices into the kept (not dropped) singular vectors
  std::vector<std::int64_t> best_neuron_vectors;
  double shift = 0;                   // added to X to make it nonnegative (or >= 1 for log)
  int normalisation_steps = 0;        // bistochastic steps taken (1 for scale, 0 for log)
  SvdMethod method_used = SvdMethod::gram;
};

// Collective. `x` is this rank's neuron block (n_local x S). Finite values only (InputError otherwise).
BiclusterResult spectral_bicluster(const Context& ctx, const Matrix& x, const BiclusterOptions& options);

}  // namespace popcode
