#pragma once
// Jobs: a TOML file (or a stage subcommand's flags) naming the stages to run, their options, the
// recording and the results file. The whole job is validated before any work: every unknown key, wrong
// type, value out of range, misordered stage and missing input is reported in one UsageError (exit 2).
//
//   [job]
//   name = "demo"                                   # default: the job file's name
//   stages = ["simulate", "preprocess", "spectrum"] # run in this order
//   recording = "demo_recording.h5"                 # input (written by simulate when it is a stage)
//   results = "demo_results.h5"                     # default: <name>_results.h5; --out overrides
//   [spectrum]
//   nshuff = 10
// Relative paths are relative to the working directory.
#include <string>
#include <vector>

#include "src/options.hpp"
#include "src/stage.hpp"

namespace popcode {

struct JobStage {
  const StageSpec* spec = nullptr;
  OptionValues options;
};

struct Job {
  std::string name;
  std::string source;                  // the job file, or "command line"
  std::string text;                    // the job file's text as given
  std::vector<std::string> overrides;  // --set arguments, in order
  std::vector<JobStage> stages;
  std::string recording;
  std::string results;                 // empty: no results file (a simulate-only command)
  // The job with every option spelled out (defaults included): running it reproduces this run.
  std::string effective_toml() const;
  const JobStage* stage(const std::string& name) const;
};

// Loads, applies `overrides` ("stage.key=value", or "job.key=value"), and validates.
Job load_job_file(const std::string& path, const std::vector<std::string>& overrides, const std::string& results_override);
// Builds a job from a stage subcommand: the stage and the stages it needs, options from flags and --set.
Job make_stage_job(const std::string& stage, const std::string& recording, const std::string& results,
                   const std::vector<std::pair<std::string, std::string>>& flags, const std::vector<std::string>& overrides);

}  // namespace popcode
