#pragma once
// k-means clustering of population vectors (one point per stimulus), distributed over neuron blocks.
//
// What it computes, as sklearn.cluster.KMeans(algorithm="lloyd") (anchor; SCIENCE.md "Clustering"):
//   - greedy k-means++ initialisation: the first centre a uniformly drawn point; each next one the best, by
//     the resulting potential sum_x min_c |x - c|^2, of 2 + floor(ln k) candidates drawn with probability
//     proportional to the current squared distance (sklearn's n_local_trials);
//   - Lloyd iterations: assign every point to its nearest centre (ties to the lower centre), move each
//     centre to the mean of its points; stop when the labels stop changing, or when the summed squared
//     centre shift is at most tol x (mean over coordinates of the points' variance), or after max_iter;
//     a final assignment makes labels and centres consistent; inertia = sum of squared distances.
//   - an empty cluster is re-seeded (a naive port leaves it at zero): it takes the point farthest from its
//     own centre among those not already moved, as sklearn does.
//   Several initialisations (n_init) keep the lowest inertia.
// Evaluation helpers: the adjusted Rand index of two labelings (sklearn's adjusted_rand_score), and the
// fraction of images whose two repeats fall in the same cluster (the seed article's measure, ~25% at k = 8).
//
// Distribution, by neuron: the points arrive neuron-blocked, and so are the centres (each rank holds its
// neurons' coordinates of all k centres). A squared distance |x_s - c_j|^2 = |x_s|^2 + |c_j|^2 - 2 x_s.c_j
// is a sum over neurons: each rank forms its partial products by BLAS and an allreduce of them replicates
// the distances, so labels are replicated and every centre update (a mean over points, per neuron) is
// local. The alternative split by points needs an allreduce of the k x N centre sums per iteration; N >> k
// here, so exchanging S x k products is the smaller. Lloyd is memory-bound at small k, so an iteration
// reads each point it needs once, in place: points go in chunks of about 1 MiB of the widest block, each
// chunk's products are formed by interleaved_products (solvers/dense.hpp: no copy of the chunk into
// dgemm's packed layout, which cost as much as the products), allreduced (chunk x k values), labelled, and
// added to the centre sums while still in cache. A RowScaling is applied to the centres, not the points
// (z.c = x.(s c) - (o s).c with z = (x - o) s), and the centre sums are of the stored values, standardised
// as means, so no standardised copy of any point is made. Memory per rank: the block (n_local x S), the
// centres and their sums (2 n_local x k), and S values per point list.
// Bounds (KmeansOptions::bounds, on by default; after Elkan 2003): a point is read again only when its
// label could have changed since it was last read. From that read it keeps its exact distances to all k
// centres (S x k values, replicated, since they come from the allreduced products); the centres of every
// iteration some point was last read at are kept too (n_local x k each, at most 64 MiB per rank: past
// that the oldest snapshot is dropped and its points are read again). A point keeps its label without
// being read when, for every other centre j, one of three sufficient conditions holds: Elkan's (its own
// distance plus how far its centre has moved since is below its distance to j then minus how far j has
// moved); the half-distance test (its own distance is below half the distance between the two centres);
// or a bound on the change of d_j^2 - d_own^2 from the centres' displacement vectors, which only needs
// |D_j - D_own| and centre inner products, and is tighter than Elkan's when the centres drift together.
// Only the points that change cluster update the centre sums (subtracted from the old, added to the new).
// Plain Lloyd, and sklearn's (whose Elkan variant still re-sums every point), read every point in every
// iteration; here an iteration reads the points near a boundary. The labels are those of plain Lloyd,
// rounding included (the skip tests keep a margin above the distances' rounding error); the centres differ
// from plain Lloyd's by the rounding of the incremental sums (tests/mpi/test_kmeans.cpp).
#include <cstdint>
#include <vector>

#include "solvers/matrix.hpp"
#include "src/context.hpp"

namespace popcode {

struct KmeansOptions {
  std::int64_t k = 8;
  int n_init = 1;
  int max_iter = 300;
  double tol = 1e-4;
  std::uint64_t seed = 0;
  bool bounds = true;  // skip points whose triangle-inequality bounds show their label cannot change (Elkan)
  int bounds_history = 0;  // centre snapshots the bounds keep at most (0: as many as fit in 64 MiB per rank, >= 4)
};

struct KmeansResult {
  std::vector<std::int32_t> labels;       // S, replicated
  Matrix centres;                         // n_local x k (this rank's neurons)
  double inertia = 0;
  int iterations = 0;                     // of the kept initialisation
  bool converged = false;
  std::int64_t reseeded = 0;              // empty clusters re-seeded (kept initialisation)
  std::vector<std::int64_t> sizes;        // k
  std::vector<std::int64_t> init_points;  // the points chosen as initial centres (kept initialisation)
  double lloyd_seconds = 0;               // wall time in Lloyd iterations, summed over the initialisations
  std::int64_t points_skipped = 0;        // point reads the bounds saved (kept initialisation), of iterations x S
};

// A per-neuron standardisation applied as the points are read: k-means then clusters the points
// (x(r, s) - offset[r]) * scale[r] (r over this rank's rows), and the centres and inertia are in that space.
// The scaling is applied to the centres as the products are formed (kmeans.hpp above), so a standardised
// copy of the block never exists; the results equal those on a standardised copy up to rounding.
struct RowScaling {
  std::vector<double> offset, scale;
};

// Collective. `points` is this rank's neuron block (n_local x S), S > k; `scaling`, when given, is
// applied to it as above.
KmeansResult kmeans(const Context& ctx, const Matrix& points, const KmeansOptions& options,
                    const RowScaling* scaling = nullptr);

// Collective. Lloyd from the given initial centres (this rank's rows, n_local x k): the step after the
// initialisation, exposed so the result can be compared with sklearn from the same start.
KmeansResult kmeans_from(const Context& ctx, const Matrix& points, Matrix centres, const KmeansOptions& options,
                         const RowScaling* scaling = nullptr);

// The adjusted Rand index of two labelings of the same items (Hubert & Arabie 1985; sklearn's
// adjusted_rand_score, including its value 1 for the degenerate cases).
double adjusted_rand_index(const std::vector<std::int32_t>& a, const std::vector<std::int32_t>& b);

}  // namespace popcode
