// Checkpoint handling shared by the decoder stages (training_stage.hpp); part of the libtorch module. The
// training options themselves are in decoder_stages.cpp, in the core.
#include "src/stages/training_stage.hpp"

#include <fmt/format.h>

#include <cstdlib>
#include <filesystem>

#include "src/log.hpp"
#include "solvers/train/trainer.hpp"

namespace popcode {

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
