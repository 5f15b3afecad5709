#include "src/blas_threads.hpp"

#include <dlfcn.h>
#include <fmt/format.h>

#include <cstdlib>

namespace popcode {
namespace {
template <typename F>
F symbol(const char* name) {
  return reinterpret_cast<F>(dlsym(RTLD_DEFAULT, name));
}
}  // namespace

int configure_blas_threads() {
  auto set = symbol<void (*)(int)>("openblas_set_num_threads");
  auto get = symbol<int (*)()>("openblas_get_num_threads");
  if (set == nullptr) return 0;
  int threads = 1;
  if (const char* v = std::getenv("POPCODE_BLAS_THREADS")) {
    threads = std::max(1, std::atoi(v));
  } else if (const char* o = std::getenv("OPENBLAS_NUM_THREADS")) {
    threads = std::max(1, std::atoi(o));
  }
  set(threads);
  return get ? get() : threads;
}

std::string blas_description() {
  auto config = symbol<const char* (*)()>("openblas_get_config");
  auto get = symbol<int (*)()>("openblas_get_num_threads");
  if (config == nullptr) return "BLAS: not OpenBLAS (reference or other implementation)";
  return fmt::format("{} ({} thread{})", config(), get ? get() : 0, get && get() == 1 ? "" : "s");
}

}  // namespace popcode
