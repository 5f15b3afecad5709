#pragma once
// NumPy .npy files (format versions 1.0, 2.0 and 3.0): little- and big-endian, C and Fortran order,
// dtypes f4 f8 i1 i2 i4 i8 u1 u2 u4 u8 b1. Values are returned as float64 in C (row-major) order.
// Object arrays (pickles) and structured dtypes are refused with a message saying so.
#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace popcode {

struct NpyArray {
  std::vector<std::int64_t> shape;
  std::string dtype;  // e.g. "<f8"
  bool fortran_order = false;
  std::vector<double> values;  // C order
};

// Throws InputError (exit 3) naming `name` and the problem.
NpyArray parse_npy(std::span<const unsigned char> bytes, const std::string& name);
NpyArray read_npy(const std::string& path);

}  // namespace popcode
