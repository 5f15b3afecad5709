#pragma once
// Distributions of distances between population responses: to the same image across repeats, and to
// different images, with their summary statistics and the separation between them.
//
// What it computes: with a_t the repeat-1 and b_s the repeat-2 population vector (all neurons), the
// euclidean distances d(a_s, b_s) (same image, S values) and d(a_t, b_s), t != s (different images,
// S (S - 1) values), on the preprocessed responses ("raw") and on responses with every neuron z-scored over
// stimuli within each repeat ("zscored", as identity decoding does). For each: mean, s.d. (population),
// min and max of both sets; histograms of both on common bins (np.histogram's edges and assignment, over
// the range of all S^2 distances); the separation
//   d'  = (mean_diff - mean_same) / sqrt((var_diff + var_same) / 2), and
//   AUC = P(same < different) + P(same = different) / 2 over all (same, different) pairs, exactly (the
//         probability that a random same-image distance is the smaller; 1 = perfectly separated).
//
// Distribution: the S x S products come from solvers/cross_repeat.hpp, reduce-scattered by repeat-2
// stimulus; each rank turns its columns into distances in place, sorts its different-image distances, and
// counts, for every same-image distance (gathered, S values), how many of its distances are smaller and
// equal; counts, moments and histograms are summed over ranks. Memory per rank: that of cross_repeat
// (n_local x 2S transformed copy, S x S local product, S x S/P columns).
#include <cstdint>
#include <vector>

#include "solvers/matrix.hpp"
#include "src/context.hpp"

namespace popcode {

struct DistanceSummary {
  double mean = 0, std = 0, min = 0, max = 0;
  std::int64_t count = 0;
};

struct DistanceDistributions {
  std::vector<double> same;                  // S: d(a_s, b_s), replicated
  DistanceSummary same_summary, different_summary;
  std::vector<double> edges;                 // bins + 1
  std::vector<std::int64_t> same_counts, different_counts;
  double d_prime = 0, auc = 0;
  std::int64_t neurons = 0, zero_variance = 0;
};

// Collective. `repeats` is this rank's n_local x 2S block [repeat 1 | repeat 2], S >= 2.
DistanceDistributions response_distances(const Context& ctx, const Matrix& repeats, bool zscored, int bins);

}  // namespace popcode
