#include "src/stage.hpp"

namespace popcode {

const Recording& Workspace::open_recording(const Context& ctx) {
  if (!recording) recording = Recording::open(ctx, recording_path);
  return *recording;
}

const std::vector<StageSpec>& stage_registry() {
  static const std::vector<StageSpec> stages = {simulate_stage(), preprocess_stage(), spectrum_stage(), distances_stage(), decode_identity_stage(),
                                                 dimension_stage(), dimension_spont_stage(), cluster_stage(), rf_stage()
#if POPCODE_WITH_TORCH
                                                 , decode_category_stage(), decode_orientation_stage(), decode_spatial_stage()
#endif
  };
  return stages;
}

const StageSpec* find_stage(const std::string& name) {
  for (const auto& s : stage_registry())
    if (s.name == name) return &s;
  return nullptr;
}

std::vector<std::string> stage_names() {
  std::vector<std::string> out;
  for (const auto& s : stage_registry()) out.push_back(s.name);
  return out;
}

}  // namespace popcode
