#pragma once
// Image identity decoding across repeats: which of the S images was shown, read from one repeat of the
// population response by comparing it with the other repeat.
//
// Method (Stringer, Pachitariu et al. 2019; anchor: MouseLand stringer-pachitariu-et-al-2018b
// decoder/decode2800.m, SCIENCE.md "Image identity decoding"):
//   1. z-score each neuron over stimuli, separately in repeat 1 and repeat 2 (s.d. with S - 1, as MATLAB's
//      zscore; any common scale leaves the decoding unchanged). A neuron constant over stimuli in a repeat
//      has no z-score: it is set to 0 there and counted (zero_variance_neurons).
//   2. similarity of every repeat-1 stimulus t with every repeat-2 stimulus s over the chosen neurons:
//        correlation: Pearson correlation of the two population vectors over neurons (the anchor), or
//        dot:         their dot product (the variant of the authors' notebooks).
//   3. the decoded image of repeat-2 stimulus s is argmax_t similarity(t, s); ties go to the lowest t, as
//      MATLAB's max and numpy's argmax. Values within 1e-12 (relative) of the maximum count as tied, so
//      that rounding never picks the winner: small subsets tie exactly (two neurons correlate +-1) and the
//      reduction's summation order would otherwise change the answer with the rank count. Deliberate
//      difference from the anchor, which takes the first of the rounded maxima. Accuracy = fraction of s
//      decoded as themselves; chance = 1/S.
//   A correlation is undefined when a population vector has no variance over neurons (always so for a
//   single neuron). Such pairs never win; a query with no defined similarity is undecided and counts as
//   wrong (reported per subset, never hidden).
//   Subset curves: for each size m in `subset_sizes` and each draw, m neurons drawn without replacement
//   (a counter-based generator: the same neurons at any rank count) decode alone.
//
// Distribution: the responses stay in their neuron blocks; the similarities are the cross-repeat products
// of solvers/cross_repeat.hpp (z-scored, and centred for correlation), whose reduce-scatter leaves each rank
// the columns of its block of query stimuli; the argmax is local and the S decisions are gathered. Results are identical at any rank count
// up to the summation order of the S x S reduction.
// Memory per rank: the z-scored copy of the chosen local rows (<= n_local x 2S doubles), the local S x S
// contribution, and S x ceil(S/P) reduced columns.
#include <cstdint>
#include <string>
#include <vector>

#include "solvers/matrix.hpp"
#include "src/context.hpp"

namespace popcode {

enum class IdentitySimilarity { correlation, dot };
IdentitySimilarity parse_identity_similarity(const std::string& name);
const char* identity_similarity_name(IdentitySimilarity s);

struct IdentityDecoding {
  std::vector<std::int32_t> predicted;   // S: decoded repeat-1 stimulus for each repeat-2 stimulus, -1 if undecided
  std::vector<double> true_similarity;   // S: similarity of each stimulus with itself across repeats (NaN if undefined)
  std::vector<std::int32_t> true_rank;   // S: how many repeat-1 stimuli score strictly above the true one
  double accuracy = 0;
  std::int64_t undecided = 0;
  std::int64_t neurons = 0;              // neurons used, over all ranks
  std::int64_t zero_variance_neurons = 0;  // (neuron, repeat) pairs constant over stimuli, set to 0
};

// Collective. `repeats` is this rank's n_local x 2S block [repeat 1 | repeat 2]; `rows` lists the local
// rows to use (ascending); `all_rows` uses every local row. S >= 1.
IdentityDecoding decode_identity(const Context& ctx, const Matrix& repeats, const std::vector<std::int64_t>& rows,
                                 bool all_rows, IdentitySimilarity similarity);

struct IdentityCurveOptions {
  std::vector<std::int64_t> subset_sizes;  // sizes larger than the population are dropped
  int draws = 5;
  std::uint64_t seed = 0;
  IdentitySimilarity similarity = IdentitySimilarity::correlation;
};

struct IdentityCurve {
  std::vector<std::int64_t> sizes;
  std::vector<double> accuracy;           // [size, draw], row-major
  std::vector<std::int64_t> undecided;    // [size, draw]
  std::vector<double> mean, std;          // over draws (s.d. with draws - 1; 0 for one draw)
};

// The `m` global neuron indices of draw `draw` out of `n` (ascending), the same on every rank.
std::vector<std::int64_t> draw_neuron_subset(std::int64_t n, std::int64_t m, std::uint64_t seed, std::int64_t draw);

// Collective. The curve over neuron subsets. `neuron_offset` and `neurons_total` place this rank's rows
// among all neurons (the layout of PreprocessedData). Reports progress over the sizes.
IdentityCurve identity_curve(const Context& ctx, const Matrix& repeats, std::int64_t neuron_offset,
                             std::int64_t neurons_total, const IdentityCurveOptions& options);

}  // namespace popcode
