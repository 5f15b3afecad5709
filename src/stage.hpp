#pragma once
// Stages: the unit of work of a job. Each stage declares its options, the stages whose in-memory product
// it needs, and a run function that computes and writes one results group.
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "io/recording.hpp"
#include "io/results.hpp"
#include "solvers/preprocess.hpp"
#include "src/context.hpp"
#include "src/options.hpp"

namespace popcode {

// What stages hand to each other within one job (held in memory, per rank).
struct Workspace {
  std::string recording_path;
  std::optional<Recording> recording;      // opened on first use
  bool truth_copied = false;               // /truth of this recording is already in the results file
  std::optional<PreprocessedData> preprocessed;

  // Collective. Opens the recording if not yet open.
  const Recording& open_recording(const Context& ctx);
};

struct StageRun {
  const Context& ctx;
  const OptionValues& options;
  Workspace& workspace;
  ResultsFile* results;       // null when the stage runs without a results file (standalone simulate)
  std::string identity;       // to pass to StageWriter::commit
};

struct StageSpec {
  std::string name;
  std::string summary;
  std::vector<OptionSpec> options;
  std::vector<std::string> needs;     // stages that must run earlier in the same job
  bool produces_recording = false;    // writes the job's recording instead of reading it
  std::function<void(StageRun&)> run;
};

// All stages in pipeline order.
const std::vector<StageSpec>& stage_registry();
// nullptr when unknown.
const StageSpec* find_stage(const std::string& name);
std::vector<std::string> stage_names();

// Registration hooks, one per stage file (src/stages/*.cpp).
StageSpec simulate_stage();
StageSpec preprocess_stage();
StageSpec spectrum_stage();
StageSpec decode_identity_stage();
StageSpec dimension_stage();
StageSpec dimension_spont_stage();
StageSpec distances_stage();
StageSpec cluster_stage();
StageSpec rf_stage();
#if POPCODE_WITH_TORCH
StageSpec decode_category_stage();
StageSpec decode_orientation_stage();
StageSpec decode_spatial_stage();
#endif

}  // namespace popcode
