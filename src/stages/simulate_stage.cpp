// Stage `simulate`: writes the job's recording from the synthetic V1 simulator (src/sim/simulator.hpp).
#include <fmt/format.h>

#include "src/log.hpp"
#include "src/sim/simulator.hpp"
#include "src/stages/stage_util.hpp"

namespace popcode {

namespace {
OptionSpec integer(const std::string& key, std::int64_t def, const std::string& help, double min) {
  OptionSpec o{key, OptionType::integer, def, help, {}, min, {}, {}};
  return o;
}
OptionSpec real(const std::string& key, double def, const std::string& help, double min, std::optional<double> max = {}) {
  OptionSpec o{key, OptionType::real, def, help, {}, min, max, {}};
  return o;
}
}  // namespace

void copy_truth(StageRun& run) {
  if (run.results == nullptr || run.workspace.truth_copied) return;
  const Recording& rec = run.workspace.open_recording(run.ctx);
  if (!rec.info().has_truth) return;
  run.results->copy_group(run.ctx, rec.info().path, "/truth");
  run.workspace.truth_copied = true;
}

StageSpec simulate_stage() {
  const sim::SimulateOptions d;
  StageSpec s;
  s.name = "simulate";
  s.summary = "write a synthetic V1 recording with planted truth (the embedded default data)";
  s.produces_recording = true;
  s.options = {
      OptionSpec{"stimulus", OptionType::text, d.stimulus,
                 "images (dead leaves with classes) or gratings (drifting gratings at random directions, von Mises "
                 "direction tuning; the orientation experiment)",
                 {"images", "gratings"}, {}, {}, {}},
      integer("neurons", d.neurons, "number of neurons", 1),
      integer("images", d.images, "number of distinct images (gratings: distinct directions)", 2),
      integer("repeats", d.repeats, "presentations of each image", 1),
      integer("height", d.height, "image height in pixels", 4),
      integer("width", d.width, "image width in pixels", 4),
      real("alpha", d.alpha, "planted power-law exponent of the latent signal eigenspectrum", 0.01),
      integer("latent_dims", d.latent_dims, "latent signal dimensions (0: min(images-1, feature_bank, (neurons-1)/2))", 0),
      integer("feature_bank", d.feature_bank, "Gabor features spanning the latent stimulus space", 1),
      real("rf_fraction", d.rf_fraction, "share of signal variance from each neuron's own Gabor receptive field", 0, 1),
      integer("rf_rank", d.rf_rank, "0: independent Gabor receptive fields; r: each a mix of r shared Gabors (low rank)", 0),
      real("noise", d.noise, "trial-to-trial noise s.d. relative to the signal s.d.", 0),
      integer("spont_dims", d.spont_dims, "shared spontaneous dimensions", 0),
      integer("spont_timepoints", d.spont_timepoints, "spontaneous-activity time points", 0),
      real("spont_scale", d.spont_scale, "s.d. of the first shared spontaneous dimension", 0),
      real("leak", d.leak, "amplitude of spontaneous activity during stimuli, relative to spontaneous periods", 0),
      real("gray_fraction", d.gray_fraction, "gray-screen presentations per image presentation", 0, 1),
      integer("classes", d.classes, "image classes", 1),
      integer("planes", d.planes, "imaging planes", 1),
      real("plane_spacing", d.plane_spacing, "distance between planes, um", 0),
      integer("seed", static_cast<std::int64_t>(d.seed), "random seed", 0),
      OptionSpec{"truth_spectrum", OptionType::boolean, d.truth_spectrum,
                 "store the realised signal spectrum in /truth (one images x images reduction; images only)", {}, {}, {}, {}},
  };
  s.run = [](StageRun& run) {
    const OptionValues& o = run.options;
    sim::SimulateOptions so;
    so.stimulus = o.text("stimulus");
    so.neurons = o.integer("neurons");
    so.images = o.integer("images");
    so.repeats = o.integer("repeats");
    so.height = o.integer("height");
    so.width = o.integer("width");
    so.alpha = o.real("alpha");
    so.latent_dims = o.integer("latent_dims");
    so.feature_bank = o.integer("feature_bank");
    so.rf_fraction = o.real("rf_fraction");
    so.rf_rank = o.integer("rf_rank");
    so.noise = o.real("noise");
    so.spont_dims = o.integer("spont_dims");
    so.spont_timepoints = o.integer("spont_timepoints");
    so.spont_scale = o.real("spont_scale");
    so.leak = o.real("leak");
    so.gray_fraction = o.real("gray_fraction");
    so.classes = o.integer("classes");
    so.planes = o.integer("planes");
    so.plane_spacing = o.real("plane_spacing");
    so.seed = static_cast<std::uint64_t>(o.integer("seed"));
    so.truth_spectrum = o.flag("truth_spectrum");
    const sim::SimulateSummary summary = sim::simulate(run.ctx, so, run.workspace.recording_path);
    run.workspace.recording.reset();
    run.workspace.truth_copied = false;
    if (run.results == nullptr) return;
    copy_truth(run);
    StageWriter w = run.results->begin_stage(run.ctx, "simulate");
    w.attribute("recording", run.workspace.recording_path);
    w.attribute("presentations", summary.presentations);
    w.attribute("latent_dims", summary.latent_dims);
    w.attribute("alpha_signal", summary.alpha_signal);
    w.commit(run.identity, o.canonical());
  };
  return s;
}

}  // namespace popcode
