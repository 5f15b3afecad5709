// libFuzzer target: the Sensorium folder reader's meta files. The input is split at its first 0xFF byte
// into meta/trials/frame_image_id.npy and meta/trials/tiers.npy of a folder with three valid trials, and the
// folder is described as in an import. Only popcode::Error may escape.
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <string>

#include "io/importers/formats.hpp"
#include "src/errors.hpp"

namespace {

void write(const std::filesystem::path& p, const std::uint8_t* data, std::size_t size) {
  std::FILE* f = std::fopen(p.c_str(), "wb");
  if (f == nullptr) return;
  std::fwrite(data, 1, size, f);
  std::fclose(f);
}

// A valid .npy of `n` float32 values (header padded to 64 bytes).
std::string npy_f4(int n) {
  std::string h = "{'descr': '<f4', 'fortran_order': False, 'shape': (" + std::to_string(n) + ",), }";
  while ((10 + h.size() + 1) % 64 != 0) h += ' ';
  h += '\n';
  std::string s = "\x93NUMPY\x01";
  s += '\0';
  s += static_cast<char>(h.size() & 0xff);
  s += static_cast<char>(h.size() >> 8);
  s += h;
  s.append(static_cast<std::size_t>(4 * n), '\0');
  return s;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  namespace fs = std::filesystem;
  static const fs::path root = fs::path("/tmp") / ("popcode_fuzz_sensorium_" + std::to_string(::getpid()));
  static bool made = false;
  if (!made) {
    fs::create_directories(root / "data" / "responses");
    fs::create_directories(root / "meta" / "trials");
    const std::string trial = npy_f4(4);
    for (int t = 0; t < 3; ++t) {
      write(root / "data" / "responses" / (std::to_string(t) + ".npy"), reinterpret_cast<const std::uint8_t*>(trial.data()),
            trial.size());
    }
    made = true;
  }
  const std::uint8_t* split = std::find(data, data + size, std::uint8_t{0xFF});
  write(root / "meta" / "trials" / "frame_image_id.npy", data, static_cast<std::size_t>(split - data));
  const std::uint8_t* rest = split == data + size ? split : split + 1;
  write(root / "meta" / "trials" / "tiers.npy", rest, static_cast<std::size_t>(data + size - rest));
  try {
    popcode::ImportOptions options;
    (void)popcode::make_sensorium_importer(root.string(), options)->describe();
  } catch (const popcode::Error&) {
  }
  return 0;
}
