#pragma once
// The data-parallel training loop shared by the decoders and, next, the encoding models.
//
// Samples are partitioned over ranks in contiguous blocks (a stimulus block of partition/): rank r holds
// global samples [global_offset, global_offset + local count). Each epoch draws one permutation of all
// global samples from (seed, epoch) with a counter-based generator, identical on every rank; step s takes the
// global batch perm[s B, (s + 1) B), and every rank computes the loss of the batch members it holds:
//     loss_r = sum_{i in batch, i on r} w_i l_i / sum_{i in batch} w_i,
// with per-sample weights w (replicated; class weights for imbalance). Summing the gradients of loss_r over
// ranks (DataParallel) gives exactly the gradient of the weighted batch mean that one rank with the whole
// batch computes, so P ranks reproduce 1 rank up to floating-point reassociation of the sums, whatever
// the (random) share of each rank in a batch. This is torch.nn.CrossEntropyLoss(weight=...)'s mean.
//
// Batch statistics: a batchnorm layer normalises with the statistics of its rank's part of the batch (not
// synchronised), and its running statistics are averaged over ranks after every step, so replicas stay
// equal. Models with batchnorm therefore depend on the number of ranks; models without it do not. A
// rank holding a single sample of a batch for a batchnorm model leaves that sample out of the step
// (counted in TrainHistory::skipped_samples). Dropout masks come from each rank's own torch generator
// (seeded from seed and rank), so dropout runs are reproducible at a fixed rank count.
//
// Checkpoints (torch archives written by rank 0, atomically: temporary file, then rename) hold the model,
// the optimizer state, every rank's torch generator, the position in the epoch, the running epoch sums, the
// curves, the early-stopping state and the best parameters. They are written every `checkpoint_every` steps,
// after `stop_after_steps`, and when SIGTERM or SIGUSR1 arrives (the flag is agreed over ranks at every step,
// so all ranks stop at the same step), and once more when training ends, marked finished. A later call with
// the same checkpoint path and identity resumes from it and continues bit for bit as an uninterrupted run on
// the same number of ranks; from a finished checkpoint it trains nothing and returns the stored result.
//
// Memory per rank: the model, its gradients and optimizer state (Adam: 2 more copies), one gradient bucket,
// the local samples, and one batch of activations.
#include <torch/torch.h>

#include <cstdint>
#include <functional>
#include <limits>
#include <string>
#include <vector>

#include "solvers/train/data_parallel.hpp"

namespace popcode {

// A network for the trainer: the module (parameters, buffers, train/eval mode, serialisation) and its
// forward function. `as_model` wraps any module holder with a Tensor -> Tensor forward (Sequential too).
struct Model {
  std::shared_ptr<torch::nn::Module> module;
  std::function<torch::Tensor(const torch::Tensor&)> forward;
};
template <class Holder>
Model as_model(Holder net) {
  return Model{net.ptr(), [net](const torch::Tensor& x) mutable { return net->forward(x); }};
}

struct ShardedSamples {
  torch::Tensor inputs;    // this rank's samples along dimension 0, on the training device
  torch::Tensor targets;   // same first dimension
  std::int64_t global_count = 0;
  std::int64_t global_offset = 0;  // global index of local sample 0
  std::vector<double> weights;     // replicated per-sample loss weights, global_count of them (empty: all 1)
};

struct TrainOptions {
  std::int64_t epochs = 50;
  std::int64_t batch_size = 256;          // global batch
  std::string optimizer = "adam";         // adam | sgd
  double learning_rate = 1e-3;
  double momentum = 0.0;                  // sgd
  double weight_decay = 0.0;
  std::string schedule = "none";          // none | step (every `schedule_every` epochs) | plateau (no
                                          // validation improvement for `schedule_every` epochs)
  std::int64_t schedule_every = 10;
  double schedule_factor = 0.1;           // learning-rate multiplier at each decay
  std::int64_t schedule_max_decays = 3;   // plateau: stop decaying after this many
  std::int64_t early_stopping_patience = 0;  // epochs without validation improvement before stopping (0: off)
  bool restore_best = true;               // end with the parameters of the best validation epoch
  bool higher_is_better = false;          // direction of the validation metric
  std::uint64_t seed = 0;
  std::int64_t checksum_every = 100;      // steps between replica checksums (0: only at the end)
  std::string checkpoint_path;            // empty: no checkpoints, no resume
  std::string checkpoint_identity;        // a checkpoint with another identity is ignored (with a warning)
  std::int64_t checkpoint_every = 0;      // steps (0: only on a signal or stop_after_steps)
  std::int64_t stop_after_steps = 0;      // stop (with a checkpoint) once this many steps are done (0: off)
  std::string label = "train";            // prefix of the log lines
  std::int64_t log_every_epochs = 0;      // 0: about four lines per run
};

// Per-sample losses (reduction "none") of `outputs` against `targets`.
using SampleLoss = std::function<torch::Tensor(const torch::Tensor& outputs, const torch::Tensor& targets)>;

struct TrainHistory {
  std::vector<double> epoch_loss;        // weighted mean training loss of each epoch
  std::vector<double> validation;        // validation metric after each epoch (NaN without validation)
  std::vector<double> learning_rate;     // learning rate used in each epoch
  std::vector<double> step_loss;         // global batch loss of every step
  std::int64_t steps = 0, epochs_done = 0;
  std::int64_t best_epoch = -1;          // 0-based; -1 without validation
  double best_validation = std::numeric_limits<double>::quiet_NaN();
  bool stopped_early = false;
  bool interrupted = false;              // stopped by a signal or stop_after_steps, checkpoint written
  int signal = 0;                        // the signal that interrupted (0: none, or stop_after_steps)
  std::int64_t resumed_from_step = -1;   // -1: started fresh
  std::int64_t skipped_samples = 0;      // batchnorm singletons left out (see above)
  double seconds = 0;                    // wall time of this call
  double samples_per_second = 0;         // training samples processed per second (all ranks)
};

// Collective. Trains `model` (already on dp's device; rank 0's initial parameters are broadcast) on `train`,
// evaluating `metric` (per-sample values, averaged over the global validation set) on `validation` after
// every epoch when validation.global_count > 0. `metric` may be null: the validation loss is used.
TrainHistory train_model(DataParallel& dp, Model& model, const ShardedSamples& train,
                         const ShardedSamples& validation, const SampleLoss& loss, const SampleLoss& metric,
                         const TrainOptions& options);

// `model`'s outputs for every local sample of `inputs` (evaluation mode, no gradients), in
// chunks of `batch`.
torch::Tensor predict(Model& model, const torch::Tensor& inputs, std::int64_t batch);

// After train_model returned interrupted by a signal: gives the signal its default action (the process
// dies of it, as popcode does outside training). No-op when history.signal is 0.
void reraise_training_signal(const TrainHistory& history);

}  // namespace popcode
