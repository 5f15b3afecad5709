// libFuzzer target: a .npy stream in memory through parse_npy_file, i.e. the header scanner, dtype and shape
// checks, element conversion, Fortran reordering, string decoding and, for '|O' headers, the pickle reader.
// Only popcode::Error may escape (a clean "bad input" report); any other exception, crash, leak or sanitizer
// report is a bug.
#include <cstddef>
#include <cstdint>
#include <span>

#include "io/npy.hpp"
#include "src/errors.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  try {
    (void)popcode::parse_npy_file(std::span<const unsigned char>(data, size), "fuzz.npy");
  } catch (const popcode::Error&) {
  }
  return 0;
}
