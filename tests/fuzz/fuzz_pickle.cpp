// libFuzzer target: raw pickle bytes through parse_pickled_dict (the opcode machine, memo, marks, whitelisted
// globals, and the conversion of the resulting dict). Only popcode::Error may escape; any other exception,
// crash, leak, timeout or sanitizer report is a bug.
#include <cstddef>
#include <cstdint>
#include <span>

#include "io/pickle.hpp"
#include "src/errors.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  try {
    (void)popcode::parse_pickled_dict(std::span<const unsigned char>(data, size), "fuzz.pkl");
  } catch (const popcode::Error&) {
  }
  return 0;
}
