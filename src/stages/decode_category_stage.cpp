// Stage `decode-category`: image category from population responses with a cross-validated MLP or linear
// decoder, trained data-parallel on libtorch (solvers/decode_category.hpp). Writes /decode_category.
// Built only with POPCODE_WITH_TORCH.
#include <fmt/format.h>

#include "solvers/decode_category.hpp"
#include "solvers/nets/mlp.hpp"
#include "solvers/train/trainer.hpp"
#include "src/log.hpp"
#include "src/stages/training_stage.hpp"

namespace popcode {

StageSpec decode_category_stage() {
  StageSpec s;
  s.name = "decode-category";
  s.summary = "image category decoded by an MLP or linear softmax decoder, k-fold cross-validated over images";
  s.needs = {"preprocess"};
  TrainingSpecDefaults d;
  d.hidden_example = "16384,4096,1024,128";  // the seed article's
  s.options = training_option_specs(d);
  s.options.push_back(OptionSpec{"balance", OptionType::text, std::string("weight"),
                                 "class imbalance: weight (loss weights n/(K n_c)), oversample, or none",
                                 {"weight", "oversample", "none"}, {}, {}, {}});
  s.options.push_back(OptionSpec{"merge", OptionType::text, std::string(""),
                                 "classes merged into one, groups separated by ';' (names or indices), e.g. \"0,1;5,6,7\"",
                                 {}, {}, {}, {}});
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
    read_training_options(o, co);
    co.balance = o.text("balance");
    try {
      co.merge = parse_class_merge(o.text("merge"), names);
    } catch (const UsageError& e) {
      throw UsageError(e.what(), /*collective=*/true);  // the names are replicated: every rank fails alike
    }
    const StageCheckpoints ck = prepare_checkpoints(run, "decode-category");
    co.checkpoint_prefix = ck.prefix;
    co.checkpoint_identity = ck.identity;
    co.stop_after_steps = ck.stop_after_steps;
    const CategoryDecodeResult r = decode_category(run.ctx, p, classes, names, co);
    if (r.interrupted) end_interrupted_training("decode-category", ck, r.signal);
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
    remove_checkpoints(run, ck, co.folds);
  };
  return s;
}

}  // namespace popcode
