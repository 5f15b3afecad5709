#include <gtest/gtest.h>

#include <cstring>

#include "io/npy.hpp"
#include "src/errors.hpp"

namespace popcode {
namespace {

// Builds a .npy byte stream: magic, version, header padded to a multiple of 64, then data.
std::vector<unsigned char> npy(int major, const std::string& dict, const std::vector<unsigned char>& data) {
  std::vector<unsigned char> out = {0x93, 'N', 'U', 'M', 'P', 'Y', static_cast<unsigned char>(major), 0};
  const std::size_t prefix = major == 1 ? 10 : 12;
  std::string header = dict;
  while ((prefix + header.size() + 1) % 64 != 0) header += ' ';
  header += '\n';
  const std::size_t len = header.size();
  out.push_back(static_cast<unsigned char>(len & 0xff));
  out.push_back(static_cast<unsigned char>((len >> 8) & 0xff));
  if (major > 1) {
    out.push_back(static_cast<unsigned char>((len >> 16) & 0xff));
    out.push_back(static_cast<unsigned char>((len >> 24) & 0xff));
  }
  out.insert(out.end(), header.begin(), header.end());
  out.insert(out.end(), data.begin(), data.end());
  return out;
}

template <typename T>
std::vector<unsigned char> bytes_of(const std::vector<T>& v, bool big_endian = false) {
  std::vector<unsigned char> out;
  for (const T& x : v) {
    unsigned char b[sizeof(T)];
    std::memcpy(b, &x, sizeof(T));
    if (big_endian) std::reverse(b, b + sizeof(T));
    out.insert(out.end(), b, b + sizeof(T));
  }
  return out;
}

TEST(Npy, ReadsLittleEndianFloat64Version1) {
  const auto a = parse_npy(npy(1, "{'descr': '<f8', 'fortran_order': False, 'shape': (3,), }", bytes_of<double>({1.5, -2, 3e10})), "t");
  EXPECT_EQ(a.shape, (std::vector<std::int64_t>{3}));
  EXPECT_EQ(a.values, (std::vector<double>{1.5, -2, 3e10}));
}

TEST(Npy, ReadsBigEndianFloat32Version2) {
  const auto a = parse_npy(npy(2, "{'descr': '>f4', 'fortran_order': False, 'shape': (2,), }", bytes_of<float>({0.25f, 7.0f}, true)), "t");
  EXPECT_EQ(a.values, (std::vector<double>{0.25, 7.0}));
}

TEST(Npy, TransposesFortranOrder) {
  // Logical 2 x 3 matrix [[1,2,3],[4,5,6]] stored column-major: 1 4 2 5 3 6.
  const auto a = parse_npy(npy(3, "{'descr': '<i4', 'fortran_order': True, 'shape': (2, 3), }", bytes_of<std::int32_t>({1, 4, 2, 5, 3, 6})), "t");
  EXPECT_EQ(a.values, (std::vector<double>{1, 2, 3, 4, 5, 6}));
}

TEST(Npy, ReadsIntegerAndBoolTypes) {
  EXPECT_EQ(parse_npy(npy(1, "{'descr': '|u1', 'fortran_order': False, 'shape': (2,), }", {255, 1}), "t").values,
            (std::vector<double>{255, 1}));
  EXPECT_EQ(parse_npy(npy(1, "{'descr': '|i1', 'fortran_order': False, 'shape': (2,), }", {255, 1}), "t").values,
            (std::vector<double>{-1, 1}));
  EXPECT_EQ(parse_npy(npy(1, "{'descr': '|b1', 'fortran_order': False, 'shape': (3,), }", {0, 1, 2}), "t").values,
            (std::vector<double>{0, 1, 1}));
  EXPECT_EQ(parse_npy(npy(1, "{'descr': '>i8', 'fortran_order': False, 'shape': (1,), }", bytes_of<std::int64_t>({-5}, true)), "t").values,
            (std::vector<double>{-5}));
}

TEST(Npy, RefusesMalformedInput) {
  const auto good = npy(1, "{'descr': '<f8', 'fortran_order': False, 'shape': (4,), }", bytes_of<double>({1, 2, 3, 4}));
  auto truncated = good;
  truncated.resize(truncated.size() - 3);
  EXPECT_THROW(parse_npy(truncated, "t"), InputError);
  auto bad_magic = good;
  bad_magic[1] = 'X';
  EXPECT_THROW(parse_npy(bad_magic, "t"), InputError);
  EXPECT_THROW(parse_npy(npy(1, "{'descr': '|O', 'fortran_order': False, 'shape': (1,), }", {0, 0, 0, 0, 0, 0, 0, 0}), "t"), InputError);
  EXPECT_THROW(parse_npy(npy(1, "{'descr': [('a', '<f8')], 'fortran_order': False, 'shape': (1,), }", bytes_of<double>({1})), "t"), InputError);
  EXPECT_THROW(parse_npy(npy(1, "{'descr': '<f8', 'fortran_order': False, 'shape': (999999999999, 999999999), }", {}), "t"), InputError);
  EXPECT_THROW(parse_npy(npy(1, "{'descr': '<f2', 'fortran_order': False, 'shape': (1,), }", {0, 0}), "t"), InputError);
  EXPECT_THROW(parse_npy(npy(9, "{}", {}), "t"), InputError);
  try {
    parse_npy(truncated, "spec.npy");
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("spec.npy"), std::string::npos);
    EXPECT_NE(std::string(e.what()).find("truncated"), std::string::npos);
  }
}

}  // namespace
}  // namespace popcode
