#pragma once
// Helpers shared by the stage definitions.
#include <string>
#include <utility>

#include "src/errors.hpp"
#include "src/stage.hpp"

namespace popcode {

// Collective. Copies the recording's planted truth (/truth) into the results file when it has one, so
// recovered and planted values can be compared from one file.
void copy_truth(StageRun& run);

// Runs `fn`; an InputError from it (a solver's message, which does not know the file) comes back naming the
// stage and the recording. Collective exactly when `fn` is: the rethrow keeps the error's collective flag.
template <typename Fn>
auto naming_recording(const StageRun& run, const std::string& stage, Fn&& fn) -> decltype(fn()) {
  try {
    return std::forward<Fn>(fn)();
  } catch (const InputError& e) {
    throw InputError(stage + ": " + run.workspace.recording_path + ": " + e.what(), e.collective());
  }
}

}  // namespace popcode
