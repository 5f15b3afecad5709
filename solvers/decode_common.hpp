#pragma once
// Machinery shared by the libtorch decoders (decode_category, decode_orientation): the move from neuron
// blocks to sample blocks, per-neuron z-scoring with training-set statistics, seeded shuffles for folds,
// and the padding of per-fold curves. Internal to solvers/; needs POPCODE_WITH_TORCH.
//
// Memory: a SampleBlock holds this rank's samples x all neurons in float32 (n_samples N / P floats); the
// z-scoring passes work on chunks of 256 local rows in float64, so no float64 copy of the block is made.
#include <torch/torch.h>

#include <cstdint>
#include <functional>
#include <vector>

#include <fmt/format.h>

#include "solvers/matrix.hpp"
#include "solvers/nets/mlp.hpp"
#include "solvers/train/trainer.hpp"
#include "src/context.hpp"

namespace popcode::decode {

// Fisher-Yates with the counter-based generator (Stream::folds): a pure function of (seed, tag, v.size()).
void shuffle(std::vector<std::int64_t>& v, std::uint64_t seed, std::uint32_t tag);

// Local indices j in [0, count) whose global index offset + j satisfies `pick`.
std::vector<std::int64_t> local_rows(std::int64_t offset, std::int64_t count, const std::function<bool(std::int64_t)>& pick);

// Rows `rows` of `t` (dimension 0).
torch::Tensor rows_of(const torch::Tensor& t, const std::vector<std::int64_t>& rows);

// This rank's contiguous block of samples, every neuron, float32: x is (count x neurons) on the CPU.
struct SampleBlock {
  torch::Tensor x;
  std::int64_t offset = 0, count = 0, neurons = 0, samples = 0;
};

// Collective. `neuron_block` is this rank's neurons (rows, any count per rank) x all n_samples samples
// (columns); the result is block-partitioned over samples (partition/redistribute.hpp).
SampleBlock to_sample_block(const Context& ctx, const Matrix& neuron_block, std::int64_t neurons_total);

// Per-neuron z-scoring with the mean and s.d. (ddof 0) of the training samples; constant neurons map to 0.
struct Standardizer {
  torch::Tensor mean, inv_sd;  // 1 x N, float32
  torch::Tensor operator()(const torch::Tensor& rows) const { return (rows - mean) * inv_sd; }
};
// Collective. `train_rows` are local row indices of `block`.
Standardizer fit_standardizer(const Context& ctx, const SampleBlock& block, const std::vector<std::int64_t>& train_rows);
// From given per-neuron means and s.d. (replicated, N each; s.d. 0 maps to 0).
Standardizer fixed_standardizer(const std::vector<double>& mean, const std::vector<double>& sd);

// Collective. Every rank's `local` (one value per local row), concatenated in rank order on every rank.
std::vector<double> gather_rows(const Context& ctx, const std::vector<double>& local);
std::vector<std::int64_t> gather_rows(const Context& ctx, const std::vector<std::int64_t>& local);

// The trainer settings of fold `f` from a decoder's options (the fields every decoder option struct has).
template <class DecoderOptions>
TrainOptions fold_train_options(const DecoderOptions& o, std::int64_t f, const char* stage, bool higher_is_better) {
  TrainOptions to;
  to.epochs = o.epochs;
  to.batch_size = o.batch_size;
  to.optimizer = o.optimizer;
  to.learning_rate = o.learning_rate;
  to.weight_decay = o.weight_decay;
  to.early_stopping_patience = o.early_stopping_patience;
  to.higher_is_better = higher_is_better;
  to.seed = o.seed * 31ULL + static_cast<std::uint64_t>(f);
  if (!o.checkpoint_prefix.empty()) to.checkpoint_path = fmt::format("{}fold{}.pt", o.checkpoint_prefix, f);
  to.checkpoint_identity = fmt::format("{} fold {}", o.checkpoint_identity, f);
  to.stop_after_steps = o.stop_after_steps;
  to.label = fmt::format("{} fold {}/{}", stage, f + 1, o.folds);
  return to;
}

// The network of fold `f`: `build()` when given, else an MLP with the options' hidden widths, dropout and
// batchnorm, or one linear layer for model = "linear"; initial weights from (seed, fold); moved to `device`.
template <class DecoderOptions>
torch::nn::Sequential fold_network(const DecoderOptions& o, std::int64_t f, std::int64_t inputs, std::int64_t outputs,
                                   const torch::Device& device, const std::function<torch::nn::Sequential()>& build = {}) {
  torch::manual_seed(o.seed * 7919ULL + static_cast<std::uint64_t>(f));
  if (build) {
    torch::nn::Sequential net = build();
    net->to(device);
    return net;
  }
  MlpOptions mo;
  if (o.model == "mlp") {
    mo.hidden = o.hidden;
    mo.dropout = o.dropout;
    mo.batchnorm = o.batchnorm;
  }
  torch::nn::Sequential net = make_mlp(inputs, outputs, mo);
  net->to(device);
  return net;
}

// What the folds' training runs leave for the results: curves, kept epochs, time and throughput.
struct FoldHistories {
  std::vector<std::vector<double>> loss, validation;
  std::vector<std::int64_t> best_epoch;
  std::int64_t epochs = 0;  // the longest fold's
  double seconds = 0, samples = 0;
  void add(const TrainHistory& h);
  double samples_per_second() const { return seconds > 0 ? samples / seconds : 0; }
};

// folds x epochs row-major, NaN past the end of a fold's curve.
std::vector<double> pad_curves(const std::vector<std::vector<double>>& curves, std::int64_t epochs);

}  // namespace popcode::decode
