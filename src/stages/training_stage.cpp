// Options and checkpoint handling shared by the decoder stages (training_stage.hpp).
#include "src/stages/training_stage.hpp"

#include <fmt/format.h>

#include <cstdlib>
#include <filesystem>

#include "src/log.hpp"
#include "solvers/train/trainer.hpp"

namespace popcode {

std::vector<OptionSpec> training_option_specs(const TrainingSpecDefaults& d) {
  auto text = [](const char* k, const char* def, std::string h, std::vector<std::string> choices = {}) {
    return OptionSpec{k, OptionType::text, std::string(def), std::move(h), std::move(choices), {}, {}, {}};
  };
  auto integer = [](const char* k, std::int64_t def, std::string h, double lo, double hi) {
    return OptionSpec{k, OptionType::integer, def, std::move(h), {}, lo, hi, {}};
  };
  auto real = [](const char* k, double def, std::string h, double lo, double hi) {
    return OptionSpec{k, OptionType::real, def, std::move(h), {}, lo, hi, {}};
  };
  auto flag = [](const char* k, bool def, std::string h) { return OptionSpec{k, OptionType::boolean, def, std::move(h), {}, {}, {}, {}}; };
  return {
      text("model", d.models.front().c_str(), d.model_help, d.models),
      OptionSpec{"hidden", OptionType::text, std::string(d.hidden), fmt::format("hidden layer widths of the mlp, e.g. \"{}\"", d.hidden_example),
                 {}, {}, {}, positive_list_check("hidden", d.hidden_example, true)},
      real("dropout", d.dropout, "dropout after each hidden layer", 0, 0.99),
      flag("batchnorm", d.batchnorm, "batchnorm after each hidden linear layer (statistics per rank)"),
      integer("folds", 5, "cross-validation folds (all presentations of a stimulus in one fold)", 2, 100),
      real("validation_fraction", 0.1, "share of each fold's training stimuli held out for early stopping", 0, 0.5),
      flag("shuffle_labels", false, "permute the labels over stimuli (a control that must decode at chance)"),
      integer("epochs", d.epochs, "maximum training epochs per fold", 1, 100000),
      integer("batch_size", 128, "global minibatch (split over ranks)", 1, 1 << 24),
      text("optimizer", "adam", "adam or sgd", {"adam", "sgd"}),
      real("learning_rate", 1e-3, "learning rate", 1e-12, 10),
      real("weight_decay", 1e-4, "L2 weight decay", 0, 10),
      integer("patience", d.patience, fmt::format("early stopping: epochs without {} improvement on validation (0: off)", d.metric), 0, 100000),
      text("device", "auto", "auto (a GPU when libtorch has CUDA and one is visible), cpu, or cuda", {"auto", "cpu", "cuda"}),
      integer("seed", 0, "seed of folds, label shuffle, initial weights, sample order and dropout", 0, 1e15),
      flag("checkpoints", true, "checkpoint training beside the results file (<results>.ckpt/) and resume from it after a signal"),
  };
}

StageCheckpoints prepare_checkpoints(const StageRun& run, const std::string& stage) {
  StageCheckpoints ck;
  if (const char* stop = std::getenv("POPCODE_TRAIN_STOP_AFTER_STEPS")) ck.stop_after_steps = std::atoll(stop);
  if (!run.options.flag("checkpoints") || run.results == nullptr) return ck;
  ck.dir = run.results->path() + ".ckpt";
  on_root(run.ctx, [&] { std::filesystem::create_directories(ck.dir); });
  ck.prefix = ck.dir + "/" + stage + "-";
  ck.identity = run.identity + "\n" + run.options.canonical();
  return ck;
}

void end_interrupted_training(const std::string& stage, const StageCheckpoints& ck, int signal) {
  log::info("{}: interrupted; rerun the job to resume from {}", stage, ck.dir);
  TrainHistory h;
  h.signal = signal;
  reraise_training_signal(h);
  throw InputError(fmt::format("{} stopped after POPCODE_TRAIN_STOP_AFTER_STEPS = {} steps; rerun without it to resume "
                               "from the checkpoint",
                               stage, ck.stop_after_steps),
                   true);
}

void remove_checkpoints(const StageRun& run, const StageCheckpoints& ck, std::int64_t folds) {
  if (ck.dir.empty()) return;
  on_root(run.ctx, [&] {
    for (std::int64_t f = 0; f < folds; ++f) std::filesystem::remove(fmt::format("{}fold{}.pt", ck.prefix, f));
    std::error_code ec;
    std::filesystem::remove(ck.dir, ec);  // only when empty
  });
}

}  // namespace popcode
