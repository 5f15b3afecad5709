// Stage `decode-orientation`: stimulus orientation or direction decoded from single presentations by a
// cross-validated MLP or linear decoder, trained data-parallel on libtorch (solvers/decode_orientation.hpp).
// Reads the raw responses itself (no preprocess stage: the Neuromatch procedure z-scores responses and
// nothing else; orientation recordings have no repeats to split). Writes /decode_orientation.
// Part of the libtorch module (libpopcode_torch.so); the stage's options are in decoder_stages.cpp.
#include <fmt/format.h>

#include <cmath>

#include "partition/block_layout.hpp"
#include "solvers/decode_orientation.hpp"
#include "src/log.hpp"
#include "src/stages/decoder_runs.hpp"
#include "src/stages/training_stage.hpp"

namespace popcode {

void run_decode_orientation(StageRun& run) {
  const OptionValues& o = run.options;
  const Context& ctx = run.ctx;
  const Recording& rec = run.workspace.open_recording(ctx);
  const RecordingInfo& info = rec.info();
  ctx.agree(!info.has_orientation,
            fmt::format("decode-orientation needs stimulus angles (/orientation, radians per presentation); the recording "
                        "{} has none (import an orientation recording: stim.ori, or istim/stimuli of the Neuromatch files)",
                        info.path),
            ExitCode::bad_input);
  // Samples: presentations of a stimulus (not gray screens) with a finite angle.
  const std::vector<double> orientation = rec.read_orientation(ctx);
  std::vector<std::int64_t> used;
  std::vector<double> angle;
  std::vector<std::int32_t> group;
  std::int64_t nonfinite = 0;
  for (std::int64_t p = 0; p < info.presentations; ++p) {
    const std::int32_t id = info.stimulus_id[static_cast<std::size_t>(p)];
    const double a = orientation[static_cast<std::size_t>(p)];
    if (id == kGrayScreenId) continue;
    if (!std::isfinite(a)) {
      ++nonfinite;
      continue;
    }
    used.push_back(p);
    angle.push_back(a);
    group.push_back(id);
  }
  if (nonfinite > 0)
    log::warn("decode-orientation: {} stimulus presentations of {} have a NaN or infinite /orientation and are left out",
              nonfinite, info.path);
  ctx.agree(static_cast<std::int64_t>(used.size()) < 2 * o.integer("folds"),
            fmt::format("decode-orientation: {} has {} presentations with a stimulus angle; {} folds need at least {}",
                        info.path, used.size(), o.integer("folds"), 2 * o.integer("folds")),
            ExitCode::bad_input);

  // This rank's neuron block, GAD+ neurons dropped, restricted to the used presentations.
  const Range mine = BlockLayout(info.neurons, ctx.size()).range(ctx.rank());
  ValueCounts counts;
  Matrix all = rec.read_responses(ctx, mine, &counts);
  ctx.agree(counts.nan + counts.inf > 0,
            fmt::format("decode-orientation: /responses of {} holds {} NaN and {} infinite values; this decoder refuses "
                        "them (fill or drop the affected neurons before decoding)",
                        info.path, counts.nan, counts.inf),
            ExitCode::bad_input);
  std::vector<std::int64_t> keep;
  std::int64_t gad_local = 0;
  {
    const std::vector<std::uint8_t> gad = info.has_gad && o.flag("drop_gad") ? rec.read_gad(ctx, mine) : std::vector<std::uint8_t>{};
    for (std::int64_t i = 0; i < mine.size(); ++i) {
      if (!gad.empty() && gad[static_cast<std::size_t>(i)] != 0) ++gad_local;
      else keep.push_back(i);
    }
  }
  const auto n_used = static_cast<std::int64_t>(used.size());
  Matrix block(static_cast<std::int64_t>(keep.size()), n_used);
  for (std::int64_t c = 0; c < n_used; ++c)
    for (std::size_t r = 0; r < keep.size(); ++r) block(static_cast<std::int64_t>(r), c) = all(keep[r], used[static_cast<std::size_t>(c)]);
  all = Matrix();  // the raw block is not needed during training
  const std::int64_t N = ctx.sum(static_cast<std::int64_t>(keep.size()));
  const std::int64_t gad_dropped = ctx.sum(gad_local);
  ctx.agree(N < 1, fmt::format("decode-orientation: no neurons of {} are left to decode from", info.path), ExitCode::bad_input);

  OrientationDecodeOptions od;
  read_training_options(o, od);
  od.target = o.text("target");
  od.bins = o.integer("bins");
  od.period_degrees = o.real("period_degrees");
  const StageCheckpoints ck = prepare_checkpoints(run, "decode-orientation");
  od.checkpoint_prefix = ck.prefix;
  od.checkpoint_identity = ck.identity;
  od.stop_after_steps = ck.stop_after_steps;
  log::info("decode-orientation: {} neurons ({} GAD+ left out) x {} presentations, target {}, period {} degrees", N,
            gad_dropped, n_used, od.target, od.period_degrees);
  const OrientationDecodeResult r = decode_orientation(ctx, block, N, angle, group, od);
  if (r.interrupted) end_interrupted_training("decode-orientation", ck, r.signal);
  log::info("decode-orientation: {} ({} parameters, {}): median error {:.2f} deg (chance {:.1f}), mean {:.2f} deg, {} "
            "folds; training {:.1f} s, {:.0f} samples/s",
            od.model == "mlp" ? "mlp " + o.text("hidden") : std::string("linear"), r.parameters, r.device_note,
            r.median_error, r.chance_median_error, r.mean_error, od.folds, r.train_seconds, r.samples_per_second);

  if (run.results == nullptr) return;
  StageWriter w = run.results->begin_stage(ctx, "decode_orientation");
  w.scalar("median_error_degrees", r.median_error, "median over held-out presentations of the circular absolute error");
  w.scalar("mean_error_degrees", r.mean_error, "mean circular absolute error");
  w.scalar("chance_median_error_degrees", r.chance_median_error, "median error of guessing (period / 4)");
  w.replicated("presentation", used, "recording presentation index of each sample");
  w.replicated("angle", angle, "stimulus angle of each sample, radians (/orientation)");
  w.replicated("predicted", r.predicted, "decoded angle of each sample when held out, radians in [0, period)");
  w.replicated("error_degrees", r.error_degrees, "circular absolute error of each sample, degrees");
  w.replicated("fold", r.fold, "test fold of each sample");
  w.replicated("fold_median_error_degrees", r.fold_median_error, "median error on each fold's test samples");
  w.replicated("curves/train_loss", r.train_loss, "mean training loss [fold, epoch] (NaN after early stopping)",
               {od.folds, r.epochs});
  w.replicated("curves/validation_mean_error_degrees", r.validation_error,
               "mean absolute error on the validation stimuli [fold, epoch] (NaN after early stopping or without validation)",
               {od.folds, r.epochs});
  w.replicated("curves/best_epoch", r.best_epoch, "epoch (0-based) whose parameters were kept, per fold (-1: the last)");
  w.attribute("target", od.target);
  w.attribute("period_degrees", od.period_degrees);
  w.attribute("model", od.model);
  w.attribute("hidden", o.text("hidden"));
  w.attribute("neurons", N);
  w.attribute("gad_dropped", gad_dropped);
  w.attribute("parameters", r.parameters);
  w.attribute("device", r.device_note);
  w.attribute("gradient_reduction", r.backend);
  w.attribute("train_seconds", r.train_seconds);
  w.attribute("samples_per_second", r.samples_per_second);
  w.attribute("ranks", static_cast<std::int64_t>(ctx.size()));
  w.commit(run.identity, o.canonical());
  remove_checkpoints(run, ck, od.folds);
}

}  // namespace popcode
