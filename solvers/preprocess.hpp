#pragma once
// Preprocessing of stimulus responses for the population analyses.
//
// Method (Stringer, Pachitariu et al. 2019; anchor: MouseLand stringer-pachitariu-et-al-2018b
// processResp/loadProc2800.m and compute_means.m), each step switchable:
//   1. drop GAD+ neurons (/neurons/gad_positive)                                       drop_gad
//   2. drop gray-screen presentations (id -1); NaN -> 0 (or refuse NaN); Inf refused    drop_gray, nan_policy
//   3. z-score with the spontaneous statistics: mu = mean(spont), sd = std(spont) (divide by T) + 1e-6,
//      resp <- (resp - mu) / sd and spont likewise (the responses' own statistics when the recording has
//      no spontaneous activity, as the anchor does)                                   zscore_spont
//   4. project out the top k spontaneous PCs: V = leading right singular vectors of the normalised
//      spontaneous matrix (time x neurons); resp <- resp - (resp V) V^T               spont_pcs (32)
//   5. mean-centre each neuron over the kept presentations                              center
//   6. split repeats in time: an image's m presentations in time order, the first floor(m/2) average to
//      repeat 1 and the floor(m/2) starting at ceil(m/2) to repeat 2 (the middle one of an odd m is
//      unused); images with fewer than 2 presentations are dropped.
// Gray screens are also carried through steps 3-5 on the side (whatever drop_gray says), for each neuron's
// mean and s.d. over them: the decoders' gray-screen normalisation.
// Deliberate differences from the anchor: float64 throughout (the anchor takes the spontaneous SVD in
// single precision); with drop_gray = false gray screens form one extra "image" (id = n_images) instead of
// being discarded.
//
// Distribution: everything is local to a rank's neuron block except the spontaneous SVD (distributed, see
// solvers/distributed_svd.hpp) and the projections (resp V)^T and (gray V)^T, k x P and k x G sums over
// ranks. Memory per rank: the response block (n_local x P) and spontaneous block (n_local x T) in float64,
// a copy of the G gray-screen columns (n_local x G), plus the result (n_local x 2S) when some image has more
// than two presentations. Dropped neurons and presentations are compacted away in place, and when every
// repeat is one presentation (images shown twice, as in natimg2800) the result is the response block itself,
// its columns reordered in place (Matrix::select_columns), so the block is never held twice.
#include <cstdint>
#include <string>
#include <vector>

#include "io/recording.hpp"
#include "partition/block_layout.hpp"
#include "solvers/distributed_svd.hpp"
#include "solvers/matrix.hpp"
#include "src/context.hpp"

namespace popcode {

enum class NanPolicy { zero, error };

struct PreprocessOptions {
  bool drop_gad = true;
  bool drop_gray = true;
  NanPolicy nan_policy = NanPolicy::zero;
  bool zscore_spont = true;
  std::int64_t spont_pcs = 32;
  SvdMethod svd = SvdMethod::automatic;
  bool center = true;
};

struct PreprocessStats {
  std::int64_t neurons_in = 0, neurons_kept = 0, gad_dropped = 0;
  std::int64_t presentations_in = 0, gray_dropped = 0, gray_presentations = 0;
  std::int64_t images_kept = 0, images_unrepeated = 0, presentations_unused = 0;
  std::int64_t nan_responses = 0, nan_spont = 0;
  std::int64_t spont_timepoints = 0, spont_pcs_removed = 0;
  bool zscored_with_spont = false;
  std::vector<double> spont_singular_values;  // of the normalised spontaneous matrix, top spont_pcs
  double spont_variance_removed = 0;          // fraction of normalised spontaneous variance in the removed PCs
  double response_variance_removed = 0;       // fraction of normalised response variance removed by step 4
  std::string svd_method;
};

// The product consumed by the analysis stages.
struct PreprocessedData {
  Matrix repeats;                          // n_local x 2S: [repeat 1 | repeat 2] of the kept images
  std::vector<std::int32_t> image_ids;     // S, ascending: the image of each column pair
  std::vector<std::int64_t> neuron_index;  // global recording index of each local row
  std::int64_t neurons_total = 0;          // kept neurons over all ranks
  std::int64_t neuron_offset = 0;          // index of this rank's first row among the kept neurons
  // Per local row: mean and s.d. (ddof 0, + 1e-6) of the neuron's gray-screen responses after steps 3-5
  // (the same z-scoring, projection and centring); empty when the recording has no gray screens.
  std::vector<double> gray_mean, gray_sd;
  PreprocessStats stats;
};

// Collective. Reads this rank's neuron block of `recording` and applies the steps above.
PreprocessedData preprocess(const Context& ctx, const Recording& recording, const PreprocessOptions& options);

// The repeat split of step 6 (replicated, no data): for each kept image, the presentation indices that
// average into repeat 1 and repeat 2. Exposed for tests.
struct RepeatSplit {
  std::vector<std::int32_t> image_ids;
  std::vector<std::vector<std::int64_t>> first, second;
  std::int64_t images_unrepeated = 0, presentations_unused = 0;
};
RepeatSplit split_repeats(const std::vector<std::int32_t>& ids, const std::vector<double>& times,
                          const std::vector<std::int64_t>& kept_presentations);

}  // namespace popcode
