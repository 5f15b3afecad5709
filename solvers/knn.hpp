#pragma once
// Exact k-nearest-neighbour graph of population vectors, distributed over neuron blocks.
//
// What it computes: for each of the S points (columns: one population vector per stimulus or time point),
// its k nearest other points and their distances, under
//   euclidean:   ||x - y||                     (sqrt(max(0, |x|^2 + |y|^2 - 2 x.y)) as sklearn, on points centred
//                                               over points, which leaves distances unchanged)
//   cosine:      1 - x.y / (|x| |y|)            (sklearn's cosine distance)
//   correlation: 1 - Pearson correlation over neurons (each point centred over neurons, then cosine)
// Ties in distance go to the lower point index, and a point is never its own neighbour (as sklearn's
// kneighbors() without a query). Anchor: sklearn.neighbors.NearestNeighbors(algorithm="brute") on the same
// points; tests/peer compares neighbour sets.
//
// Distribution, and why by neuron: a recording arrives split by neurons (partition/), and a distance is a
// sum over neurons. Splitting the points instead would move the whole N x S matrix past every rank (a ring
// of point blocks, N S values per rank); keeping the neuron split moves only S x S partial products, and
// N >> S in these recordings (10^4-10^6 neurons, ~10^3-10^4 stimuli). Queries are processed in tiles of
// `tile` points: every rank forms its partial Gram rows X_loc[:, tile]^T X_loc by BLAS, they are summed onto
// the tile's owner (tile t belongs to rank t mod P) with MPI_Reduce, and the owner keeps a running top-k of
// each query row. No rank ever holds more than tile x S distances; the k-lists are then replicated (N k).
// Memory per rank: the local block (n_local x S) and its centred or normalised copy, two
// tile x S buffers, and the replicated result 16 S k bytes.
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

struct KnnGraph {
  std::int64_t points = 0;
  std::int64_t k = 0;
  std::vector<std::int64_t> index;  // points x k, row-major: neighbours of each point, nearest first
  std::vector<double> distance;     // points x k, the matching distances (non-decreasing along a row)
  std::int64_t neighbour(std::int64_t i, std::int64_t j) const { return index[static_cast<std::size_t>(i * k + j)]; }
  double dist(std::int64_t i, std::int64_t j) const { return distance[static_cast<std::size_t>(i * k + j)]; }
};

// Called on the owner of each query tile with the summed inner products of the tile's points with every
// point in the metric's space (column-major rows x columns: gram[q + j * rows] = <x_{first+q}, x_j>, with
// columns = S), before distances.
using GramTileVisitor =
    std::function<void(std::int64_t first, std::int64_t rows, std::int64_t columns, const double* gram)>;

// Collective. `points` is this rank's neuron block (n_local x S); every rank passes the same S, k and
// metric. Throws InputError (collectively) for k >= S, or for zero-norm points under cosine/correlation.
KnnGraph knn_graph(const Context& ctx, const Matrix& points, std::int64_t k, KnnMetric metric, std::int64_t tile = 512,
                   const GramTileVisitor& visit = {});

}  // namespace popcode
