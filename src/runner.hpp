#pragma once
// The job runner: runs a validated job's stages in order on all ranks.
//
// Restart semantics: a stage whose group in the results file is complete and whose identity (a digest of
// its options and of everything upstream, including the input recording's size and modification time)
// matches is skipped; `force` starts a fresh results file. A skipped stage is re-run anyway when a later
// stage that must run needs its in-memory product (e.g. preprocess before spectrum).
#include <string>

#include "src/context.hpp"
#include "src/job.hpp"

namespace popcode {

struct RunOptions {
  bool force = false;
  std::string command_line;
};

// Collective.
void run_job(const Context& ctx, const Job& job, const RunOptions& options);

// A short stable digest (hex) of a text, for stage identities.
std::string digest(const std::string& text);

}  // namespace popcode
