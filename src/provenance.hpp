#pragma once
// Provenance of a results file: what ran, where, when, with which code and how long each stage took.
// Written to /provenance after every stage (so a killed job still tells how far it got) and at the end.
#include <string>
#include <vector>

#include "src/context.hpp"
#include "src/job.hpp"

namespace popcode {

struct StageRecord {
  std::string name;
  std::string status;                  // "ran" or "skipped: <reason>"
  std::string started, finished;       // ISO 8601 UTC
  std::vector<double> wall, compute, comm, io, peak_rss_bytes;  // per rank
};

class Provenance {
 public:
  Provenance(const Context& ctx, const Job& job, std::string command_line);
  // Collective: gathers this rank's phase clock and peak memory for a finished stage.
  void record(const Context& ctx, const std::string& stage, const std::string& status, const std::string& started);
  // Collective: writes /provenance into `results` (replacing it).
  void write(const Context& ctx, const std::string& results, const std::string& status) const;
  const std::vector<StageRecord>& stages() const { return stages_; }

 private:
  std::string job_text_, effective_job_, overrides_, command_line_, start_;
  std::vector<std::string> hosts_;
  std::vector<StageRecord> stages_;
};

// Library and build versions, one "name: version" line each.
std::vector<std::string> build_description();

}  // namespace popcode
