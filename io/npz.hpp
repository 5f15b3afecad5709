#pragma once
// NumPy .npz archives (np.savez / np.savez_compressed): a zip file (read with libzip; Zip64 included) whose
// members are .npy streams, stored or deflated. Member names are reported without their ".npy" suffix, the
// way np.load lists them.
//
// Limits: every member must be a .npy stream of a dtype io/npy.hpp reads (an archive with other files in it is
// refused, as is an empty archive); encrypted members and compression methods other than store and deflate
// are refused. Sizes are checked before anything is allocated: a member's npy header must fit its declared
// uncompressed size, and a deflated member may not declare more than deflate's 1032:1 ratio allows, so a
// lying header or a zip bomb is an InputError, not an allocation. CRC errors (libzip checks them as the last
// byte of a member is read) are reported as "CRC mismatch".
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "io/npy.hpp"

namespace popcode {

struct NpzMember {
  std::string name;  // member name without the ".npy" suffix
  NpyHeader header;
  bool compressed = false;
  std::uint64_t compressed_size = 0, uncompressed_size = 0;
  std::uint64_t data_file_offset = 0;  // stored members: absolute file offset of the first element; 0 otherwise
};

// The members of an archive with their npy headers (only the headers are decompressed).
std::vector<NpzMember> list_npz(const std::string& path);
// One member, whole; `member` is the name with or without ".npy". The member's CRC is checked.
NpyArray read_npz_member(const std::string& path, const std::string& member);

// The same for an archive held in memory; `name` is used in messages. data_file_offset is then the offset
// into `bytes`.
std::vector<NpzMember> list_npz_buffer(std::span<const unsigned char> bytes, const std::string& name);
NpyArray read_npz_member_buffer(std::span<const unsigned char> bytes, const std::string& name,
                                const std::string& member);

}  // namespace popcode
