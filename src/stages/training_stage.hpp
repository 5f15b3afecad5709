#pragma once
// What the decoder stages share: the network and training options of their job tables, the checkpoint
// directory beside the results file, and the handling of an interrupted training. Needs POPCODE_WITH_TORCH.
#include <cstdint>
#include <string>
#include <vector>

#include "src/options.hpp"
#include "src/stage.hpp"

namespace popcode {

// Defaults that differ between decoders.
struct TrainingSpecDefaults {
  std::vector<std::string> models = {"mlp", "linear"};  // the first is the default
  const char* model_help = "mlp (hidden layers) or linear (no hidden layer: the baseline)";
  const char* hidden = "512,128";  // mlp hidden layers, or a CNN's dense head
  const char* hidden_example = "1024,128";
  double dropout = 0.5;
  bool batchnorm = true;
  std::int64_t epochs = 40;
  std::int64_t patience = 8;
  const char* metric = "balanced accuracy";  // named in the patience help
};

// model, hidden, dropout, batchnorm, folds, validation_fraction, shuffle_labels, epochs, batch_size,
// optimizer, learning_rate, weight_decay, patience, device, seed, checkpoints.
std::vector<OptionSpec> training_option_specs(const TrainingSpecDefaults& d);

// Copies those options into a decoder's option struct (fields of the same names).
template <class DecoderOptions>
void read_training_options(const OptionValues& o, DecoderOptions& d) {
  d.model = o.text("model");
  d.hidden = parse_positive_list(o.text("hidden"), "hidden", "1024,128", true);
  d.dropout = o.real("dropout");
  d.batchnorm = o.flag("batchnorm");
  d.folds = o.integer("folds");
  d.validation_fraction = o.real("validation_fraction");
  d.shuffle_labels = o.flag("shuffle_labels");
  d.epochs = o.integer("epochs");
  d.batch_size = o.integer("batch_size");
  d.optimizer = o.text("optimizer");
  d.learning_rate = o.real("learning_rate");
  d.weight_decay = o.real("weight_decay");
  d.early_stopping_patience = o.integer("patience");
  d.device = o.text("device");
  d.seed = static_cast<std::uint64_t>(o.integer("seed"));
}

// Collective. The checkpoint directory "<results>.ckpt/" (created on rank 0) when the checkpoints option is
// on and there is a results file; `prefix` is "<dir>/<stage>-". Also reads the test hook
// POPCODE_TRAIN_STOP_AFTER_STEPS (docs/training.md).
struct StageCheckpoints {
  std::string dir, prefix, identity;
  std::int64_t stop_after_steps = 0;
};
StageCheckpoints prepare_checkpoints(const StageRun& run, const std::string& stage);

// After a decoder returned interrupted: dies of the signal (as popcode does elsewhere) or, for the test hook,
// throws InputError (exit 3) telling the user to rerun.
[[noreturn]] void end_interrupted_training(const std::string& stage, const StageCheckpoints& ck, int signal);

// Rank 0 removes the per-fold checkpoints and the directory (when empty) after the results are committed.
void remove_checkpoints(const StageRun& run, const StageCheckpoints& ck, std::int64_t folds);

}  // namespace popcode
