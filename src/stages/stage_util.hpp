#pragma once
// Helpers shared by the stage definitions.
#include <string>

#include "src/stage.hpp"

namespace popcode {

// Collective. Copies the recording's planted truth (/truth) into the results file when it has one, so
// recovered and planted values can be compared from one file.
void copy_truth(StageRun& run);

}  // namespace popcode
