// Stage `distances`: distributions of distances between responses to the same image (across repeats) and
// to different images, raw and z-scored, with their separation (solvers/response_distances.hpp). Writes
// /distances.
#include <fmt/format.h>

#include "solvers/response_distances.hpp"
#include "src/log.hpp"
#include "src/stages/stage_util.hpp"

namespace popcode {

StageSpec distances_stage() {
  StageSpec s;
  s.name = "distances";
  s.summary = "distances between responses to the same image across repeats and to different images, and their separation";
  s.needs = {"preprocess"};
  s.options = {
      OptionSpec{"bins", OptionType::integer, std::int64_t{100}, "histogram bins (common to both distributions)", {}, 2.0,
                 100000.0, {}},
  };
  s.run = [](StageRun& run) {
    const OptionValues& o = run.options;
    const PreprocessedData& p = *run.workspace.preprocessed;
    const auto s_count = static_cast<std::int64_t>(p.image_ids.size());
    run.ctx.agree(s_count < 2,
                  fmt::format("distances needs at least 2 images with both repeats; the preprocessed recording {} has {}",
                              run.workspace.recording_path, s_count),
                  ExitCode::bad_input);
    const int bins = static_cast<int>(o.integer("bins"));
    const DistanceDistributions raw = response_distances(run.ctx, p.repeats, false, bins);
    const DistanceDistributions z = response_distances(run.ctx, p.repeats, true, bins);
    for (const auto& [name, r] : {std::pair<const char*, const DistanceDistributions&>{"raw", raw}, {"z-scored", z}})
      log::info("distances ({}): same image {:.4g} +- {:.4g}, different images {:.4g} +- {:.4g}; d' {:.3f}, AUC {:.4f}",
                name, r.same_summary.mean, r.same_summary.std, r.different_summary.mean, r.different_summary.std, r.d_prime,
                r.auc);
    if (run.results == nullptr) return;
    StageWriter w = run.results->begin_stage(run.ctx, "distances");
    for (const auto& [group, r] : {std::pair<std::string, const DistanceDistributions&>{"raw/", raw}, {"zscored/", z}}) {
      w.replicated(group + "same", r.same, "euclidean distance between the two repeats' responses to each image");
      w.replicated(group + "histogram/edges", r.edges, "bin edges, common to both distributions (np.histogram)");
      w.replicated(group + "histogram/same", r.same_counts, "same-image distances per bin");
      w.replicated(group + "histogram/different", r.different_counts, "different-image distances per bin (S (S - 1) in all)");
      for (const auto& [kind, m] : {std::pair<std::string, const DistanceSummary&>{"same_", r.same_summary},
                                    {"different_", r.different_summary}}) {
        w.scalar(group + kind + "mean", m.mean, "mean distance");
        w.scalar(group + kind + "std", m.std, "population s.d. of the distances");
        w.scalar(group + kind + "min", m.min, "smallest distance");
        w.scalar(group + kind + "max", m.max, "largest distance");
        w.scalar(group + kind + "count", m.count, "number of distances");
      }
      w.scalar(group + "d_prime", r.d_prime, "(mean different - mean same) / sqrt((var different + var same) / 2)");
      w.scalar(group + "auc", r.auc, "P(same-image distance < different-image distance), ties counted half");
    }
    w.replicated("image_ids", p.image_ids, "image id of each stimulus");
    w.attribute("neurons", raw.neurons);
    w.attribute("stimuli", s_count);
    w.attribute("zero_variance_neuron_repeats", z.zero_variance);
    w.commit(run.identity, o.canonical());
  };
  return s;
}

}  // namespace popcode
