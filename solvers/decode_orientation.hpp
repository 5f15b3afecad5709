#pragma once
// Stimulus orientation (or direction) decoded from single-presentation population responses: the Neuromatch
// Academy W1D5 setting (Stringer et al. 2019's orientation recordings, ~20,000 neurons), with k-fold
// cross-validation and the circular variants the tutorial leaves as exercises.
//
// Angles: theta in radians from /orientation, periodic with `period_degrees` (360: drifting-grating
// directions, as in the Stringer/Neuromatch files; 180: orientations). Each is mapped to the circle angle
// psi = 2 pi (theta mod P) / P, and decoded with one of three targets:
//   angle   MSE regression on psi itself (the tutorial's loss; it has the wrap-around problem at 0 = P),
//           standardised as (psi - pi) / (pi / sqrt 3) so that an uniform angle has mean 0 and s.d. 1: the
//           tutorial regresses raw degrees, which Adam at lr 1e-3 needs hundreds of epochs to scale up to;
//   cossin  MSE regression on (cos psi, sin psi); the estimate is atan2 of the two outputs;
//   bins    cross-entropy over `bins` equal bins of psi; the estimate is the circular mean of the bin
//           centres weighted by the softmax probabilities (so it resolves finer than a bin).
// The error of a sample is the circular distance |wrap(psi_hat - psi)| expressed in degrees of theta; the
// summary is its median over all held-out samples (chance: P / 4 for angles uniform on the circle).
//
// Inputs: per-neuron z-scores with the training fold's mean and s.d. (ddof 0), as the tutorial z-scores
// its responses (there over all stimuli; here over the training samples only, so nothing leaks).
// Folds: presentations are grouped by stimulus id (all presentations of one stimulus in one fold), the
// groups shuffled with the seed and dealt to `folds` folds; `validation_fraction` of each fold's training
// groups are held out for early stopping on the mean absolute error. `shuffle_labels` permutes angles over
// groups first (a control that must decode at chance).
//
// Distribution: the caller's neuron blocks are redistributed to sample blocks (decode_common.hpp); training
// is data-parallel (solvers/train/trainer.hpp). Memory per rank: samples x N / P floats, plus the model.
#include <cstdint>
#include <string>
#include <vector>

#include "solvers/matrix.hpp"
#include "src/context.hpp"

namespace popcode {

struct OrientationDecodeOptions {
  std::string model = "mlp";              // mlp | linear
  std::vector<std::int64_t> hidden = {200};
  double dropout = 0.0;
  bool batchnorm = false;
  std::string target = "bins";            // bins | cossin | angle
  std::int64_t bins = 36;
  double period_degrees = 360.0;
  std::int64_t folds = 5;
  double validation_fraction = 0.1;
  bool shuffle_labels = false;
  std::int64_t epochs = 50;
  std::int64_t batch_size = 128;
  std::string optimizer = "adam";
  double learning_rate = 1e-3;
  double weight_decay = 1e-4;
  std::int64_t early_stopping_patience = 10;
  std::string device = "auto";
  std::uint64_t seed = 0;
  std::string checkpoint_prefix;          // "<prefix>fold<k>.pt" per fold; empty: no checkpoints
  std::string checkpoint_identity;
  std::int64_t stop_after_steps = 0;      // test hook (docs/training.md)
};

struct OrientationDecodeResult {
  std::vector<double> predicted;          // per sample, radians in [0, P)
  std::vector<double> error_degrees;      // per sample, circular absolute error
  std::vector<std::int32_t> fold;         // per sample: its test fold
  double median_error = 0, mean_error = 0, chance_median_error = 0;  // degrees
  std::vector<double> fold_median_error;
  std::int64_t epochs = 0;
  std::vector<double> train_loss, validation_error;  // folds x epochs, NaN past a fold's last epoch
  std::vector<std::int64_t> best_epoch;
  std::int64_t parameters = 0;
  double train_seconds = 0, samples_per_second = 0;
  std::string backend, device_note;
  bool interrupted = false;
  int signal = 0;
};

// The circular error |wrap(a - b)| of two angles in radians of a circle with period `period_degrees`,
// in degrees. Exposed for tests.
double angular_error_degrees(double a, double b, double period_degrees);

// Collective. `responses` is this rank's neuron block (any number of rows) x all samples; `angle` (radians)
// and `group` (stimulus id) are replicated, one per sample.
OrientationDecodeResult decode_orientation(const Context& ctx, const Matrix& responses, std::int64_t neurons_total,
                                           const std::vector<double>& angle, const std::vector<std::int32_t>& group,
                                           const OrientationDecodeOptions& options);

}  // namespace popcode
