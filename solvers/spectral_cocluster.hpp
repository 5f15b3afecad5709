#pragma once
// Spectral co-clustering of images and neurons (Dhillon 2001; anchor sklearn.cluster.SpectralCoclustering).
//
// What it computes, for a nonnegative images x neurons matrix X and k co-clusters:
//   An = Dr^-1/2 X Dc^-1/2 with Dr, Dc the row (image) and column (neuron) sums (a zero sum gives weight 0,
//   as sklearn); the l = 1 + ceil(log2 k) leading singular vectors U (images), V (neurons) of An; the first
//   pair is dropped; Z = [Dr^-1/2 U; Dc^-1/2 V] ((S + N) x (l - 1)); k-means (solvers/kmeans.hpp, k-means++,
//   n_init initialisations) on the rows of Z; the first S labels are the images', the rest the neurons'.
// Singular vectors are sign-ambiguous; k-means distances are not affected by a column's sign.
//
// Distribution and memory: X arrives neuron-blocked (this rank's neurons x S). Column sums are local, row
// sums one allreduce of S values. The singular triplets come from solvers/distributed_svd.hpp (SLEPc by
// default; the Gram method is exact to rounding). Z is small, (S + N) x (l - 1): the neuron rows are
// allgathered, and rank 0 holds all of Z's coordinates as the "features" of the feature-split k-means (the
// other ranks hold none), so labels are replicated. Memory: the scaled copy of the block (n_local x S), the
// gathered N (l - 1) doubles on every rank and Z, (S + N) (l - 1) doubles, on rank 0.
#include <cstdint>
#include <vector>

#include "solvers/distributed_svd.hpp"
#include "solvers/kmeans.hpp"
#include "solvers/matrix.hpp"
#include "src/context.hpp"

namespace popcode {

struct CoclusterResult {
  std::vector<std::int32_t> image_labels;   // S, replicated
  std::vector<std::int32_t> neuron_labels;  // this rank's neurons
  std::vector<double> singular_values;      // the l leading singular values of An (the first is 1)
  double inertia = 0;                       // of the k-means on Z
  SvdMethod method_used = SvdMethod::gram;
};

// Collective. `x` is this rank's neuron block (n_local x S), nonnegative (InputError otherwise). k >= 2.
CoclusterResult spectral_cocluster(const Context& ctx, const Matrix& x, std::int64_t k, const KmeansOptions& kmeans_options,
                                   SvdMethod method);

}  // namespace popcode
