#pragma once
// Helpers for MPI tests.
#include <unistd.h>

#include <filesystem>
#include <string>

#include "src/context.hpp"

namespace popcode::testing {

// A fresh directory, the same path on every rank (created by rank 0, removed by the destructor).
class SharedTempDir {
 public:
  explicit SharedTempDir(const Context& ctx) : ctx_(ctx) {
    std::string path;
    if (ctx.root()) {
      char tmpl[] = "/tmp/popcode_mpi_test_XXXXXX";
      path = mkdtemp(tmpl);
    }
    path_ = ctx.broadcast(path);
  }
  ~SharedTempDir() {
    ctx_.barrier();
    if (ctx_.root()) std::filesystem::remove_all(path_);
  }
  std::string file(const std::string& name) const { return path_ + "/" + name; }

 private:
  const Context& ctx_;
  std::string path_;
};

}  // namespace popcode::testing
