// The libtorch module's one entry point: the run function of a decoder stage, by name (src/torch_module.hpp).
#include <cstring>

#include "src/stages/decoder_runs.hpp"
#include "src/torch_module.hpp"

extern "C" popcode::TorchStageRun popcode_torch_stage(const char* name) {
  if (std::strcmp(name, "decode-category") == 0) return &popcode::run_decode_category;
  if (std::strcmp(name, "decode-spatial") == 0) return &popcode::run_decode_spatial;
  if (std::strcmp(name, "decode-orientation") == 0) return &popcode::run_decode_orientation;
  return nullptr;
}
