// libFuzzer target: the MAT importer (matio underneath) on arbitrary bytes. The bytes are written to a file
// because matio reads from paths; describe() and, for v5 files, the whole-matrix load run as in an import.
// Only popcode::Error may escape (a clean "bad input" report); any crash, leak or sanitizer report is a bug.
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <string>

#include "io/importers/formats.hpp"
#include "src/errors.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const std::string path = "/tmp/popcode_fuzz_mat_" + std::to_string(::getpid()) + ".mat";
  std::FILE* f = std::fopen(path.c_str(), "wb");
  if (f == nullptr) return 0;
  std::fwrite(data, 1, size, f);
  std::fclose(f);
  try {
    popcode::ImportOptions options;
    auto importer = popcode::make_mat_importer(path, options);
    const popcode::SourceInfo info = importer->describe();
    if (info.responses.kind == popcode::BulkInfo::root_scatter) (void)importer->load_whole(info.responses);
  } catch (const popcode::Error&) {
  }
  return 0;
}
