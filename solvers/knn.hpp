#pragma once
// Exact k-nearest-neighbour graph of population vectors, distributed over neuron blocks.
//
// What it computes: for each of the S points (columns: one population vector per stimulus or time point),
// its k nearest other points and their distances, under
//   euclidean:   ||x - y||                     (sqrt(max(0, |x|^2 + |y|^2 - 2 x.y)) as sklearn, on points centred
//                                               over points, which leaves distances unchanged)
//   cosine:      1 - x.y / (|x| |y|)            (sklearn's cosine distance)
//   correlation: 1 - Pearson correlation over neurons (each point centred over neurons, then cosine)
// Equal distances go to the lower point index, and a point is never its own neighbour (as sklearn's
// kneighbors() without a query). Exact duplicates are ties only as far as their computed distances are
// bitwise equal: their products can come from different block reductions and differ in the last bit. Anchor: sklearn.neighbors.NearestNeighbors(algorithm="brute") on the same
// points; tests/peer compares neighbour sets.
//
// Distribution, and why by neuron: a recording arrives split by neurons (partition/), and a distance is a
// sum over neurons. Splitting the points instead would move the whole N x S matrix past every rank (a ring
// of point blocks, N S values per rank); keeping the neuron split moves only S x S / 2 partial products,
// and N >> S in these recordings (10^4-10^6 neurons, ~10^3-10^4 stimuli). The points are cut into tiles of
// `tile`; for each block (a, b), a <= b, of the upper triangle every rank forms its partial Gram block
// X_loc[:, a]^T X_loc[:, b] by BLAS, MPI_Reduce sums it onto the block's root (blocks dealt round-robin),
// and the root turns it into distances and offers each pair to both points' running lists. Each distance
// is computed once, so the graph is exactly symmetric, and only half of the S x S products are formed. At
// the end the partial lists of all ranks are merged by an allreduce with a merging operator (S k entries).
//
// Products (KnnProducts):
//   float64: the block products by dgemm, and the top-k kept from them directly.
//   float32 (default): the same graph at twice the BLAS rate. The block products are formed by sgemm on a
//     single-precision copy of the points, over runs of at most 2,048 neurons whose results are added in
//     double. Every product then carries a proven error bound (below), so each pair's distance lies in a known
//     interval [lo, hi]. A pair can be among a point's k nearest only if its lo is at most the k-th smallest hi
//     of that point; the pairs that pass (the candidates: the k nearest, plus the few whose interval
//     overlaps the k-th) get their products again in double from the double points, and the top-k is chosen
//     from those. The result is the float64 graph: the same neighbours and the double distances, with
//     the same tie rule. Only the double products of the candidates are computed differently (a plain dot
//     over the neurons instead of dgemm's blocks), so a distance can differ from the float64 mode's in the
//     last bit. That dot has one summation order on every x86-64 machine (its AVX2 and AVX-512 versions
//     round as the baseline's), so at a given rank count the float32 graph's distances are the same bits
//     on every machine.
//     The bound, for points x, y (in the metric's space) and u = 2^-24: rounding the points to single
//     precision moves x.y by at most (2u + u^2) |x||y|; a single-precision sum of m <= 2,048 products is off
//     by at most gamma_m = m u / (1 - m u) times the sum of their magnitudes (Higham, Accuracy and Stability
//     of Numerical Algorithms, 3.1, any order of summation, fused or not); the double additions and the
//     double re-computation add gamma_n in double. So |x.y (single) - x.y (double)| <= c |x||y| with
//     c = 2u + u^2 + gamma_2048 (1 + u)^2 + 2 gamma_n(double), about 1.2e-4, taken 1% larger, plus margins for
//     the distance formula's own rounding. The points are scaled by a power of two first (exactly) so that
//     single precision neither overflows nor loses more than an absolute 2^-149 per value to underflow,
//     which the bound also covers.
//   The visitor (the participation ratio) sees the products of the chosen mode: under float32 they are
//   within the bound above of the double ones.
//
// Memory per rank, beside the caller's block (n_local x S, 8 bytes a value, not modified): under float32 its
// transformed single-precision copy (4 bytes a value), under float64 its transformed double copy (8 bytes a
// value); two tile x tile buffers, the lists 16 S k bytes, each point's value scan (24 S bytes), and under
// float32 the candidates (24 bytes each, about S k of them). The float32 pass re-ranks from the caller's
// block, chunk of neurons by chunk: the transformed values of one chunk for all points (rerank_chunk_bytes,
// 4 MiB, or 64 S bytes if more; the same roundings as the float64 mode's copy) and 8 running double sums per
// candidate pair (64 bytes each, for at most rerank_batch_pairs, 2^20, pairs at once: 64 MiB; larger sets go
// in batches, each reading the block again).
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "solvers/matrix.hpp"
#include "src/context.hpp"

namespace popcode {

enum class KnnMetric { euclidean, cosine, correlation };
KnnMetric parse_knn_metric(const std::string& name);
const char* knn_metric_name(KnnMetric m);

enum class KnnProducts { float32, float64 };
KnnProducts parse_knn_products(const std::string& name);
const char* knn_products_name(KnnProducts p);

struct KnnGraph {
  std::int64_t points = 0;
  std::int64_t k = 0;
  std::vector<std::int64_t> index;  // points x k, row-major: neighbours of each point, nearest first
  std::vector<double> distance;     // points x k, the matching distances (non-decreasing along a row)
  std::int64_t rechecked_pairs = 0;  // float32 products: the candidate pairs whose products were formed again in double
  std::int64_t neighbour(std::int64_t i, std::int64_t j) const { return index[static_cast<std::size_t>(i * k + j)]; }
  double dist(std::int64_t i, std::int64_t j) const { return distance[static_cast<std::size_t>(i * k + j)]; }
};

// Called on the root of each block of the upper triangle with the block's summed inner products in the
// metric's space: gram[ii + jj * rows] = <x_{row_first+ii}, x_{col_first+jj}>, row_first <= col_first. A
// diagonal block (row_first == col_first) is the whole square; every other block stands for itself and its
// mirror image.
using GramBlockVisitor = std::function<void(std::int64_t row_first, std::int64_t rows, std::int64_t col_first,
                                            std::int64_t cols, const double* gram)>;

// Buffer sizes of the float32 mode's double re-ranking (see "Memory per rank" above). The defaults suit any
// size; tests shrink them to cross chunk and batch boundaries on small inputs.
struct KnnTuning {
  std::int64_t rerank_chunk_bytes = std::int64_t{4} << 20;  // one chunk of neurons for all points
  std::int64_t rerank_batch_pairs = std::int64_t{1} << 20;  // pairs whose running sums are held at once
};

// Collective. `points` is this rank's neuron block (n_local x S), read only: the metric's centring and
// normalisation are applied as values are read (float32) or to a copy (float64). Every rank passes the same S,
// k, metric and products. Throws InputError (collectively) for k >= S, for non-finite values, or for zero-norm
// points under cosine/correlation.
KnnGraph knn_graph(const Context& ctx, const Matrix& points, std::int64_t k, KnnMetric metric, std::int64_t tile = 512,
                   const GramBlockVisitor& visit = {}, KnnProducts products = KnnProducts::float32,
                   const KnnTuning& tuning = {});

}  // namespace popcode
