// Stage `decode-category`: image category from population responses with a cross-validated MLP or linear
// decoder, trained data-parallel on libtorch (solvers/decode_category.hpp). Writes /decode_category.
// Built only with POPCODE_WITH_TORCH.
#include <fmt/format.h>

#include <cstdlib>
#include <filesystem>

#include "solvers/decode_category.hpp"
#include "solvers/nets/mlp.hpp"
#include "solvers/train/trainer.hpp"
#include "src/log.hpp"
#include "src/stages/stage_util.hpp"

namespace popcode {

StageSpec decode_category_stage() {
  StageSpec s;
  s.name = "decode-category";
  s.summary = "image category decoded by an MLP or linear softmax decoder, k-fold cross-validated over images";
  s.needs = {"preprocess"};
  auto text = [](const char* k, const char* d, const char* h, std::vector<std::string> choices = {}) {
    return OptionSpec{k, OptionType::text, std::string(d), h, std::move(choices), {}, {}, {}};
  };
  auto integer = [](const char* k, std::int64_t d, const char* h, double lo, double hi) {
    return OptionSpec{k, OptionType::integer, d, h, {}, lo, hi, {}};
  };
  auto real = [](const char* k, double d, const char* h, double lo, double hi) {
    return OptionSpec{k, OptionType::real, d, h, {}, lo, hi, {}};
  };
  s.options = {
      text("model", "mlp", "mlp (hidden layers) or linear (softmax regression baseline)", {"mlp", "linear"}),
      OptionSpec{"hidden", OptionType::text, std::string("512,128"),
                 "hidden layer widths of the mlp; the seed article's is \"16384,4096,1024,128\"", {}, {}, {},
                 positive_list_check("hidden", "1024,128", true)},
      real("dropout", 0.5, "dropout after each hidden layer", 0, 0.99),
      OptionSpec{"batchnorm", OptionType::boolean, true, "batchnorm after each hidden linear layer (statistics per rank)", {}, {}, {}, {}},
      integer("folds", 5, "cross-validation folds over images (both repeats of an image in one fold)", 2, 100),
      real("validation_fraction", 0.1, "share of each fold's training images held out for early stopping", 0, 0.5),
      text("balance", "weight", "class imbalance: weight (loss weights n/(K n_c)), oversample, or none",
           {"weight", "oversample", "none"}),
      OptionSpec{"shuffle_labels", OptionType::boolean, false, "permute labels over images (a control that must decode at chance)", {}, {}, {}, {}},
      text("merge", "", "classes merged into one, groups separated by ';' (names or indices), e.g. \"0,1;5,6,7\""),
      integer("epochs", 40, "maximum training epochs per fold", 1, 100000),
      integer("batch_size", 128, "global minibatch (split over ranks)", 1, 1 << 24),
      text("optimizer", "adam", "adam or sgd", {"adam", "sgd"}),
      real("learning_rate", 1e-3, "learning rate", 1e-12, 10),
      real("weight_decay", 1e-4, "L2 weight decay", 0, 10),
      integer("patience", 8, "early stopping: epochs without balanced-accuracy improvement on validation (0: off)", 0, 100000),
      text("device", "auto", "auto (a GPU when libtorch has CUDA and one is visible), cpu, or cuda", {"auto", "cpu", "cuda"}),
      integer("seed", 0, "seed of folds, label shuffle, initial weights, sample order and dropout", 0, 1e15),
      OptionSpec{"checkpoints", OptionType::boolean, true,
                 "checkpoint training beside the results file (<results>.ckpt/) and resume from it after a signal", {}, {}, {}, {}},
  };
  s.run = [](StageRun& run) {
    const OptionValues& o = run.options;
    const PreprocessedData& p = *run.workspace.preprocessed;
    std::vector<std::string> names;
    const std::vector<std::int32_t> classes = run.workspace.open_recording(run.ctx).read_class_labels(run.ctx, &names);
    run.ctx.agree(classes.empty(),
                  fmt::format("decode-category needs image class labels (/classes/label and /classes/names); the recording "
                              "{} has none (import them with popcode import --classes, or simulate a recording)",
                              run.workspace.recording_path),
                  ExitCode::bad_input);
    run.ctx.agree(p.neurons_total < 1 || p.image_ids.size() < 2,
                  fmt::format("decode-category: the preprocessed recording {} has {} neurons and {} images",
                              run.workspace.recording_path, p.neurons_total, p.image_ids.size()),
                  ExitCode::bad_input);
    CategoryDecodeOptions co;
    co.model = o.text("model");
    co.hidden = parse_positive_list(o.text("hidden"), "hidden", "1024,128", true);
    co.dropout = o.real("dropout");
    co.batchnorm = o.flag("batchnorm");
    co.folds = o.integer("folds");
    co.validation_fraction = o.real("validation_fraction");
    co.balance = o.text("balance");
    co.shuffle_labels = o.flag("shuffle_labels");
    try {
      co.merge = parse_class_merge(o.text("merge"), names);
    } catch (const UsageError& e) {
      throw UsageError(e.what(), /*collective=*/true);  // the names are replicated: every rank fails alike
    }
    co.epochs = o.integer("epochs");
    co.batch_size = o.integer("batch_size");
    co.optimizer = o.text("optimizer");
    co.learning_rate = o.real("learning_rate");
    co.weight_decay = o.real("weight_decay");
    co.early_stopping_patience = o.integer("patience");
    co.device = o.text("device");
    co.seed = static_cast<std::uint64_t>(o.integer("seed"));
    // Test hook (docs/training.md): stop with a checkpoint after this many steps of a fold, as a preemption would.
    if (const char* stop = std::getenv("POPCODE_TRAIN_STOP_AFTER_STEPS")) co.stop_after_steps = std::atoll(stop);
    std::string ckpt_dir;
    if (o.flag("checkpoints") && run.results != nullptr) {
      ckpt_dir = run.results->path() + ".ckpt";
      on_root(run.ctx, [&] { std::filesystem::create_directories(ckpt_dir); });
      co.checkpoint_prefix = ckpt_dir + "/decode-category-";
      co.checkpoint_identity = run.identity + "\n" + o.canonical();
    }
    const CategoryDecodeResult r = decode_category(run.ctx, p, classes, names, co);
    if (r.interrupted) {
      log::info("decode-category: interrupted; rerun the job to resume from {}", ckpt_dir);
      TrainHistory h;
      h.signal = r.signal;
      reraise_training_signal(h);
      throw InputError(fmt::format("decode-category stopped after POPCODE_TRAIN_STOP_AFTER_STEPS = {} steps; rerun "
                                   "without it to resume from the checkpoint",
                                   co.stop_after_steps),
                       true);
    }
    const auto K = static_cast<std::int64_t>(r.class_names.size());
    log::info("decode-category: {} ({} parameters, {}): accuracy {:.1f}% (chance {:.1f}%), balanced {:.1f}% (chance "
              "{:.1f}%), {} folds; training {:.1f} s, {:.0f} samples/s",
              co.model == "mlp" ? "mlp " + o.text("hidden") : std::string("linear"), r.parameters, r.device_note,
              100 * r.accuracy, 100 * r.chance_accuracy, 100 * r.balanced_accuracy, 100 * r.chance_balanced, co.folds,
              r.train_seconds, r.samples_per_second);

    if (run.results == nullptr) return;
    StageWriter w = run.results->begin_stage(run.ctx, "decode_category");
    w.scalar("accuracy", r.accuracy, "fraction of test samples (every repeat of every image, each tested once) decoded correctly");
    w.scalar("balanced_accuracy", r.balanced_accuracy, "mean over classes of the per-class recall");
    w.scalar("chance_accuracy", r.chance_accuracy, "accuracy of always answering the largest class");
    w.scalar("chance_balanced_accuracy", r.chance_balanced, "1 / number of classes");
    w.replicated("recall", r.recall, "recall of each class (class order of the class_names attribute)");
    w.replicated("class_samples", r.class_samples, "test samples of each class");
    w.replicated("confusion", r.confusion, "confusion matrix [true class, predicted class], counts", {K, K});
    w.replicated("sample_class", r.sample_class, "class of each sample: repeat 1 of every image (image_ids order), then repeat 2");
    w.replicated("predicted", r.predicted, "predicted class of each sample (same order)");
    w.replicated("image_ids", p.image_ids, "image id of each preprocessed image");
    w.replicated("image_fold", r.image_fold, "test fold of each image");
    w.replicated("fold_accuracy", r.fold_accuracy, "accuracy on each fold's test images");
    w.replicated("fold_balanced_accuracy", r.fold_balanced, "balanced accuracy on each fold's test images");
    w.replicated("curves/train_loss", r.train_loss, "weighted mean training loss [fold, epoch] (NaN after early stopping)",
                 {co.folds, r.epochs});
    w.replicated("curves/validation_balanced_accuracy", r.validation_metric,
                 "balanced accuracy on the validation images [fold, epoch] (NaN after early stopping or without validation)",
                 {co.folds, r.epochs});
    w.replicated("curves/best_epoch", r.best_epoch, "epoch (0-based) whose parameters were kept, per fold (-1: the last)");
    w.attribute("class_names", r.class_names);
    w.attribute("model", co.model);
    w.attribute("hidden", o.text("hidden"));
    w.attribute("parameters", r.parameters);
    w.attribute("device", r.device_note);
    w.attribute("gradient_reduction", r.backend);
    w.attribute("train_seconds", r.train_seconds);
    w.attribute("samples_per_second", r.samples_per_second);
    w.attribute("ranks", static_cast<std::int64_t>(run.ctx.size()));
    w.commit(run.identity, o.canonical());
    if (!ckpt_dir.empty())
      on_root(run.ctx, [&] {
        for (std::int64_t f = 0; f < co.folds; ++f)
          std::filesystem::remove(fmt::format("{}fold{}.pt", co.checkpoint_prefix, f));
        std::error_code ec;
        std::filesystem::remove(ckpt_dir, ec);  // only when empty
      });
  };
  return s;
}

}  // namespace popcode
