// Loading the libtorch module (torch_module.hpp).
#include "src/torch_module.hpp"

#include <dlfcn.h>
#include <fmt/format.h>

#include <filesystem>

#include "src/context.hpp"
#include "src/errors.hpp"

namespace popcode {

std::string torch_module_path() {
  std::error_code ec;
  const std::filesystem::path exe = std::filesystem::read_symlink("/proc/self/exe", ec);
  const std::filesystem::path dir = ec ? std::filesystem::path(".") : exe.parent_path();
  return (dir / "libpopcode_torch.so").string();
}

namespace {

struct LoadedModule {
  void* handle = nullptr;
  std::string error;  // why it could not be loaded
};

// Loaded once per process, on first use (a function-local static: thread-safe initialisation).
const LoadedModule& module() {
  static const LoadedModule m = [] {
    LoadedModule loaded;
    const std::string path = torch_module_path();
    loaded.handle = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (loaded.handle == nullptr) {
      const char* why = dlerror();
      loaded.error = fmt::format("cannot load popcode's libtorch module {}: {} (it is built with the popcode binary and "
                                 "must stay beside it; rebuild, or configure with -DPOPCODE_WITH_TORCH=ON)",
                                 path, why ? why : "unknown reason");
    }
    return loaded;
  }();
  return m;
}

}  // namespace

std::function<void(StageRun&)> torch_stage_run(std::string stage) {
  return [stage = std::move(stage)](StageRun& run) {
    const LoadedModule& m = module();
    TorchStageRun body = nullptr;
    std::string error = m.error;
    if (m.handle != nullptr) {
      auto entry = reinterpret_cast<TorchStageRun (*)(const char*)>(dlsym(m.handle, "popcode_torch_stage"));
      if (entry != nullptr) body = entry(stage.c_str());
      if (body == nullptr)
        error = fmt::format("popcode's libtorch module {} has no stage {} (it is from another build of popcode; rebuild)",
                            torch_module_path(), stage);
    }
    run.ctx.agree(body == nullptr, error, ExitCode::internal);
    body(run);
  };
}

}  // namespace popcode
