// libFuzzer target: a .npz archive in memory, listed with list_npz_buffer and every member read whole, i.e.
// libzip with ZIP_CHECKCONS, the central-directory walk for stored members' offsets, the size checks made
// before allocating, and the npy decoding of each member. Only popcode::Error may escape; any other
// exception, crash, leak or sanitizer report is a bug.
#include <cstddef>
#include <cstdint>
#include <span>

#include "io/npz.hpp"
#include "src/errors.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::span<const unsigned char> bytes(data, size);
  try {
    for (const popcode::NpzMember& m : popcode::list_npz_buffer(bytes, "fuzz.npz")) {
      try {
        (void)popcode::read_npz_member_buffer(bytes, "fuzz.npz", m.name);
      } catch (const popcode::Error&) {  // one bad member should not hide the others from the fuzzer
      }
    }
  } catch (const popcode::Error&) {
  }
  return 0;
}
