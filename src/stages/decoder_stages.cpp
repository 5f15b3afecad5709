// The decoder stages' names, summaries and options: decode-category, decode-spatial and decode-orientation.
// These are in the core so that `popcode --help`, job checking and every other stage work without loading
// libtorch; the stages' bodies are in the libtorch module (libpopcode_torch.so, src/torch_module.hpp),
// which is loaded when one of these stages first runs. Built only with POPCODE_WITH_TORCH.
#include <fmt/format.h>

#include "src/stages/training_stage.hpp"
#include "src/torch_module.hpp"

namespace popcode {
namespace {

std::vector<OptionSpec> category_option_specs(const TrainingSpecDefaults& d) {
  std::vector<OptionSpec> specs = training_option_specs(d);
  specs.push_back(OptionSpec{"balance", OptionType::text, std::string("weight"),
                             "class imbalance: weight (loss weights n/(K n_c)), oversample, or none",
                             {"weight", "oversample", "none"}, {}, {}, {}});
  specs.push_back(OptionSpec{"merge", OptionType::text, std::string(""),
                             "classes merged into one, groups separated by ';' (names or indices), e.g. \"0,1;5,6,7\"",
                             {}, {}, {}, {}});
  specs.push_back(OptionSpec{"normalize", OptionType::text, std::string("zscore"),
                             "inputs per neuron: zscore (the training fold's mean and s.d.) or gray (the mean and s.d. of the "
                             "neuron's gray-screen responses)",
                             {"zscore", "gray"}, {}, {}, {}});
  return specs;
}

}  // namespace

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

StageSpec decode_category_stage() {
  StageSpec s;
  s.name = "decode-category";
  s.summary = "image category decoded by an MLP or linear softmax decoder, k-fold cross-validated over images";
  s.needs = {"preprocess"};
  TrainingSpecDefaults d;
  d.hidden_example = "16384,4096,1024,128";  // the seed article's
  s.options = category_option_specs(d);
  s.run = torch_stage_run("decode-category");
  return s;
}

StageSpec decode_spatial_stage() {
  StageSpec s;
  s.name = "decode-spatial";
  s.summary = "image category decoded by a 2D or 3D CNN from neurons binned by cortical position on a grid";
  s.needs = {"preprocess"};
  TrainingSpecDefaults d;
  d.models = {"cnn2d", "cnn3d"};
  d.model_help = "cnn2d (planes as channels) or cnn3d (one channel over planes x rows x columns)";
  d.hidden = "128";
  d.hidden_example = "128";
  d.epochs = 20;
  d.patience = 5;
  s.options = category_option_specs(d);
  s.options.push_back(OptionSpec{"grid", OptionType::text, std::string("63,63,11"),
                                 "cells along x, y and planes (the seed article's 63 x 63 x 11: 16 x 16 um blocks)", {}, {}, {},
                                 positive_list_check("grid", "63,63,11", true)});
  s.options.push_back(OptionSpec{"channels", OptionType::text, std::string("32,64,64"), "channels of the three convolution blocks",
                                 {}, {}, {}, positive_list_check("channels", "32,64,64", true)});
  s.options.push_back(OptionSpec{"max_memory_mb", OptionType::real, 0.0,
                                 "refuse grids whose binned samples need more MiB per rank (0: half the node's memory over its ranks)",
                                 {}, 0, 1e12, {}});
  s.run = torch_stage_run("decode-spatial");
  return s;
}

StageSpec decode_orientation_stage() {
  StageSpec s;
  s.name = "decode-orientation";
  s.summary = "stimulus orientation/direction decoded from single presentations (MSE on the angle, (cos, sin), or bins)";
  TrainingSpecDefaults d;
  d.hidden = "200";  // the Neuromatch tutorial's hidden layer
  d.hidden_example = "200";
  d.dropout = 0.0;
  d.batchnorm = false;
  d.epochs = 50;
  d.patience = 10;
  d.metric = "mean absolute angular error";
  s.options = training_option_specs(d);
  s.options.push_back(OptionSpec{"target", OptionType::text, std::string("bins"),
                                 "bins (classification; the estimate is the probability-weighted circular mean), cossin "
                                 "(MSE on cos and sin), or angle (MSE on the angle, as the tutorial)",
                                 {"angle", "cossin", "bins"}, {}, {}, {}});
  s.options.push_back(OptionSpec{"bins", OptionType::integer, std::int64_t{36}, "bins of the circle for target = bins", {}, 2, 100000, {}});
  s.options.push_back(OptionSpec{"period_degrees", OptionType::real, 360.0,
                                 "period of the angle: 360 for directions (drifting gratings), 180 for orientations", {}, 1e-9, 1e9, {}});
  s.options.push_back(OptionSpec{"drop_gad", OptionType::boolean, true, "leave out GAD+ neurons (/neurons/gad_positive) when flagged", {}, {}, {}, {}});  s.run = torch_stage_run("decode-orientation");
  return s;
}

}  // namespace popcode
