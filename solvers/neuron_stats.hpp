#pragma once
// Per-neuron reliability statistics of repeat-split responses.
//
// For neuron i with stimulus responses A1 (repeat 1) and A2 (repeat 2) over S stimuli, population
// (divide-by-S) moments:
//   reliability      = corr(A1, A2)                                  (Pearson)
//   noise variance   = var(A1 - A2) / 2
//   SNR              = (var A1 + var A2 - 2 noise) / (2 noise)
//   signal fraction  = mean((A1 - mean A1)(A2 - mean A2)) / (0.5 (var A1 + var A2))
// Anchor: MouseLand stringer-pachitariu-et-al-2018b powerlaws/statsShuffledPCA.m (Vexp, snr) and the
// signal-variance fraction of sims/simPowerLaw_spont_noise.m. Constant neurons give NaN (0/0), reported
// as such. Local to each rank's neuron block: no communication.
#include <vector>

#include "solvers/matrix.hpp"

namespace popcode {

struct NeuronStats {
  std::vector<double> reliability, noise_variance, snr, signal_fraction;
};

// `repeats` is a rank's block (n_local x 2S): columns [0, S) repeat 1, [S, 2S) repeat 2.
NeuronStats neuron_reliability(const Matrix& repeats);

}  // namespace popcode
