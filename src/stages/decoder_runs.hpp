#pragma once
// The bodies of the decoder stages, compiled into the libtorch module (libpopcode_torch.so) and found there
// by name through popcode_torch_stage (src/torch_module.hpp). Their options are in decoder_stages.cpp.
#include "src/stage.hpp"

namespace popcode {

void run_decode_category(StageRun& run);     // decode_category_stage.cpp
void run_decode_spatial(StageRun& run);      // decode_category_stage.cpp
void run_decode_orientation(StageRun& run);  // decode_orientation_stage.cpp

}  // namespace popcode
