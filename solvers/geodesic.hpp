#pragma once
// Histogram of geodesic (graph shortest-path) distances on a kNN graph, without the N x N distance matrix.
//
// What it computes, as the Granata-Carnevale procedure (anchor: dgranata/Intrinsic-Dimension ID_fit.py,
// kneighbors_graph + graph_shortest_path(directed=False) + np.histogram):
//   - the undirected graph: an edge {i, j} when j is among the k nearest of i or i among the k nearest of j,
//     weighted by their distance (the smaller of the two computed values when both directions exist, so
//     the weight is one number);
//   - the connectivity filter: a point is kept when it reaches more than half of all points (component
//     size - 1 > N / 2); the anchor zeroes the other rows. With none kept the graph is "highly
//     disconnected" and the anchor stops: so does popcode (InputError);
//   - the distance of each unordered pair {i < j} of kept points is Dijkstra's from source i (the upper
//     triangle of the anchor's matrix, summed along the path from i: the smallest rounded path sum, which
//     popcode's bucketed label-correcting search returns as any correct Dijkstra does; see geodesic.cpp);
//     pairs at distance 0 (duplicate
//     points) are left out as the anchor's nonzero() does, and counted;
//   - the histogram: `bins` equal bins from the smallest to the largest distance, with numpy's edges
//     (linspace) and numpy's bin assignment (last bin closed), so the counts equal np.histogram's exactly.
//   Also the mean and population s.d. of the distances, which the fit needs.
//
// Sampled sources (GeodesicSampling::sources = m < kept points): m kept points drawn at random (a function of
// the seed alone, not of the rank count) are the sources, and each is paired with every other kept point
// (both orders, so every pair is equally likely to be counted). The counts are then integer counts of those
// m (kept - 1) ordered pairs; `scale` = kept / (2 m) turns them into estimated counts of all unordered pairs.
// The statistical error: per bin, the standard error of that estimate from the spread of the per-source
// counts (with the finite-population factor sqrt(1 - m / kept)), and the counts, means and s.d. of `groups`
// disjoint source groups (draw position mod groups), for batch-means errors of anything fitted to the
// histogram (the dimension stage's D_fit).
//
// Distribution: the graph (N k edges) is replicated; Dijkstra sources are dealt to ranks cyclically (the
// q-th source, in point order or draw order, to rank q mod P: a source's pair count N - i falls with i). Each rank accumulates its sources' pair
// statistics; a rank searches its sources in the breadth-first numbering of the graph, sampled ones grouped into
// batches of nearby sources, sixteen at a time where it can (GeodesicSearch below). The histogram range
// (smallest and largest distance over all pairs) is reduced first, then the counts. Memory per rank: the graph
// and Dijkstra's state, O(N k) (the sixteen-source search's distances and keys: 136 N bytes; the grouping of
// sampled sources, before the searches: 16 N bytes and 16 per edge between groups); plus, to avoid a second Dijkstra
// pass, the rank's own pair distances when they fit in `store_bytes` (8 bytes a pair, about N^2 / 2P);
// otherwise the sources are run twice (first for the range, then for the counts).
#include <cstdint>
#include <vector>

#include "solvers/knn.hpp"
#include "src/context.hpp"

namespace popcode {

// Compressed adjacency of an undirected weighted graph: each neighbour of a point listed once, no point its
// own neighbour, weights finite and non-negative (geodesic_histogram's search relies on all three and checks
// them).
struct UndirectedGraph {
  std::int64_t points = 0;
  std::vector<std::int64_t> offset;  // points + 1
  std::vector<std::int64_t> target;
  std::vector<double> weight;
  double max_edge = 0;               // largest weight among the first-k kNN edges (the anchor's A.max())
};

// The undirected graph of the first `k` neighbours of each point of `g` (k <= g.k).
UndirectedGraph undirected_knn_graph(const KnnGraph& g, std::int64_t k);

// Shortest-path distances from `source` (infinity where unreachable) by geodesic_histogram's bucketed search
// with buckets of `width` (> 0), at most 4,097 of them. Any width gives the same distances, bit for bit: it
// sets only the speed (geodesic.cpp).
std::vector<double> geodesic_distances(const UndirectedGraph& g, std::int64_t source, double width);

// Connected components: label of each point (0-based, in order of first appearance) and their sizes.
struct Components {
  std::vector<std::int64_t> label;
  std::vector<std::int64_t> size;
};
Components connected_components(const UndirectedGraph& g);

struct GeodesicSampling {
  std::int64_t sources = 0;  // 0 (or >= the kept points): every kept point, the exact histogram
  std::uint64_t seed = 0;
  int groups = 10;           // source groups of the batch-means error (sampled only)
};

struct GeodesicHistogram {
  std::vector<std::int64_t> counts;  // bins
  std::vector<double> edges;         // bins + 1
  double min = 0, max = 0, mean = 0, std = 0;
  std::int64_t pairs = 0;            // pairs histogrammed
  std::int64_t zero_pairs = 0;       // pairs at distance 0, left out
  std::int64_t points_kept = 0;      // points passing the connectivity filter
  std::vector<std::uint8_t> kept;    // 1 for each kept point
  bool stored = false;               // one Dijkstra pass (distances held) or two
  // Sampling (see above); exact: sampled false, sources = points_kept, scale 1, the rest empty.
  bool sampled = false;
  std::int64_t sources = 0;
  std::vector<std::int64_t> source_points;    // sampled: the drawn sources, in draw order (group = position mod groups)
  double scale = 1;
  std::vector<double> count_se;               // bins: standard error of scale * counts
  std::vector<std::int64_t> group_counts;     // groups x bins
  std::vector<double> group_mean, group_std;  // groups
};

// How geodesic_histogram searches: sixteen sources at a time in 64-byte vectors where the CPU has AVX-512F
// (geodesic_batch_supported()), else one at a time; or one at a time always. Both give the same bits (the
// tests compare them); the batched search took the dimension benchmark's pass from 1.4-2.0 to 0.8 s.
enum class GeodesicSearch { batched_where_supported, one_source };
bool geodesic_batch_supported();

// Collective. Every rank passes the same graph.
GeodesicHistogram geodesic_histogram(const Context& ctx, const UndirectedGraph& graph, int bins,
                                     std::int64_t store_bytes = std::int64_t{1} << 30,
                                     const GeodesicSampling& sampling = {},
                                     GeodesicSearch search = GeodesicSearch::batched_where_supported);

// numpy's np.histogram bin edges and bin index for equal bins over [first, last] (first < last).
std::vector<double> numpy_bin_edges(double first, double last, int bins);
int numpy_bin_index(double x, double first, double last, const std::vector<double>& edges);

}  // namespace popcode
