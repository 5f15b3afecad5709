#pragma once
// The libtorch module. Everything that needs libtorch (the networks, the data-parallel trainer and the
// decoder stages' bodies) is built into libpopcode_torch.so beside the popcode binary, which opens it with
// dlopen when a decoder stage first runs. Loading libtorch costs about 158 MiB of resident memory per
// process (its relocations and operator registry; measured with a bare dlopen of libtorch_cpu.so 1.13), so
// a rank that never trains does not pay it. The module resolves popcode's own functions against the binary,
// which exports them.
#include <functional>
#include <string>

#include "src/stage.hpp"

namespace popcode {

using TorchStageRun = void (*)(StageRun&);

// The module's path: libpopcode_torch.so in the directory of the running binary.
std::string torch_module_path();

// A StageSpec::run for the decoder stage `stage`: loads the module on first use (collective: if any rank
// cannot load it, every rank stops with exit 1 and a message naming the file and the loader's reason) and
// runs the stage's body from it.
std::function<void(StageRun&)> torch_stage_run(std::string stage);

}  // namespace popcode

// Defined in the module: the body of decoder stage `name`, or null when the module has none by that name.
extern "C" popcode::TorchStageRun popcode_torch_stage(const char* name);
