// Tests of the .npy reader (io/npy.hpp): hand-built streams, the fixtures in tests/fixtures/numpy (written by
// make_fixtures.py, whose values are spelled out here), element conversion for every dtype and byte order,
// and refusals of malformed headers with the message they should give.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <fstream>
#include <iterator>

#include "io/npy.hpp"
#include "src/errors.hpp"
#include "numpy_test_util.hpp"

#ifndef POPCODE_SOURCE_DIR
#error "POPCODE_SOURCE_DIR must name the repository root (the fixtures live under it)"
#endif

namespace popcode {
namespace {

using testing::input_error;
using testing::slurp;
const auto fixture = testing::numpy_fixture;

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
  const auto a = parse_npy(
      npy(1, "{'descr': '<f8', 'fortran_order': False, 'shape': (3,), }", bytes_of<double>({1.5, -2, 3e10})), "t");
  EXPECT_EQ(a.shape, (std::vector<std::int64_t>{3}));
  EXPECT_EQ(a.values, (std::vector<double>{1.5, -2, 3e10}));
}

TEST(Npy, ReadsBigEndianFloat32Version2) {
  const auto a = parse_npy(
      npy(2, "{'descr': '>f4', 'fortran_order': False, 'shape': (2,), }", bytes_of<float>({0.25f, 7.0f}, true)), "t");
  EXPECT_EQ(a.values, (std::vector<double>{0.25, 7.0}));
}

TEST(Npy, TransposesFortranOrder) {
  // Logical 2 x 3 matrix [[1,2,3],[4,5,6]] stored column-major: 1 4 2 5 3 6.
  const auto a = parse_npy(
      npy(3, "{'descr': '<i4', 'fortran_order': True, 'shape': (2, 3), }", bytes_of<std::int32_t>({1, 4, 2, 5, 3, 6})),
      "t");
  EXPECT_EQ(a.values, (std::vector<double>{1, 2, 3, 4, 5, 6}));
}

TEST(Npy, ReadsIntegerAndBoolTypes) {
  EXPECT_EQ(parse_npy(npy(1, "{'descr': '|u1', 'fortran_order': False, 'shape': (2,), }", {255, 1}), "t").values,
            (std::vector<double>{255, 1}));
  EXPECT_EQ(parse_npy(npy(1, "{'descr': '|i1', 'fortran_order': False, 'shape': (2,), }", {255, 1}), "t").values,
            (std::vector<double>{-1, 1}));
  EXPECT_EQ(parse_npy(npy(1, "{'descr': '|b1', 'fortran_order': False, 'shape': (3,), }", {0, 1, 2}), "t").values,
            (std::vector<double>{0, 1, 1}));
  EXPECT_EQ(
      parse_npy(npy(1, "{'descr': '>i8', 'fortran_order': False, 'shape': (1,), }", bytes_of<std::int64_t>({-5}, true)),
                "t")
          .values,
      (std::vector<double>{-5}));
}

TEST(Npy, RefusesMalformedInput) {
  const auto good = npy(1, "{'descr': '<f8', 'fortran_order': False, 'shape': (4,), }", bytes_of<double>({1, 2, 3, 4}));
  auto truncated = good;
  truncated.erase(truncated.end() - 3, truncated.end());  // (resize trips a GCC 12 -Wstringop-overflow false positive)
  EXPECT_THROW(parse_npy(truncated, "t"), InputError);
  auto bad_magic = good;
  bad_magic[1] = 'X';
  EXPECT_THROW(parse_npy(bad_magic, "t"), InputError);
  EXPECT_THROW(
      parse_npy(npy(1, "{'descr': '|O', 'fortran_order': False, 'shape': (1,), }", {0, 0, 0, 0, 0, 0, 0, 0}), "t"),
      InputError);
  EXPECT_THROW(
      parse_npy(npy(1, "{'descr': [('a', '<f8')], 'fortran_order': False, 'shape': (1,), }", bytes_of<double>({1})),
                "t"),
      InputError);
  EXPECT_THROW(
      parse_npy(npy(1, "{'descr': '<f8', 'fortran_order': False, 'shape': (999999999999, 999999999), }", {}), "t"),
      InputError);
  EXPECT_THROW(parse_npy(npy(1, "{'descr': '<f2', 'fortran_order': False, 'shape': (1,), }", {0, 0}), "t"), InputError);
  EXPECT_THROW(parse_npy(npy(9, "{}", {}), "t"), InputError);
  try {
    parse_npy(truncated, "spec.npy");
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("spec.npy"), std::string::npos);
    EXPECT_NE(std::string(e.what()).find("truncated"), std::string::npos);
  }
}

const std::string kF8Dict = "{'descr': '<f8', 'fortran_order': False, 'shape': (4,), }";

TEST(Npy, HeaderParsesWithoutData) {
  const auto bytes = npy(1, "{'descr': '<f4', 'fortran_order': True, 'shape': (3, 4), }", {});
  const NpyHeader h = parse_npy_header(bytes, "t");
  EXPECT_EQ(h.shape, (std::vector<std::int64_t>{3, 4}));
  EXPECT_EQ(h.dtype, "<f4");
  EXPECT_EQ(h.kind, 'f');
  EXPECT_EQ(h.item_size, 4);
  EXPECT_FALSE(h.big_endian);
  EXPECT_TRUE(h.fortran_order);
  EXPECT_EQ(h.data_offset, 128u);
  EXPECT_EQ(h.count(), 12);
  EXPECT_EQ(h.data_bytes(), 48u);
  // The data is not needed for the header, but parse_npy wants it.
  EXPECT_NE(input_error([&] { parse_npy(bytes, "t.npy"); }).find("needs 48 data bytes but the file holds 0"),
            std::string::npos);
}

TEST(Npy, HeaderVariants) {
  // What other writers produce: double quotes, no trailing comma, Python 2 longs, other key order, shape ().
  const NpyHeader a =
      parse_npy_header(npy(1, "{\"shape\": (2L, 3L), \"fortran_order\": False, \"descr\": \">i2\"}", {}), "t");
  EXPECT_EQ(a.shape, (std::vector<std::int64_t>{2, 3}));
  EXPECT_TRUE(a.big_endian);
  EXPECT_EQ(a.kind, 'i');
  const NpyHeader b = parse_npy_header(npy(2, "{'descr': '|u1', 'fortran_order': False, 'shape': ()}", {}), "t");
  EXPECT_TRUE(b.shape.empty());
  EXPECT_EQ(b.count(), 1);
  EXPECT_EQ(b.data_offset, 128u);
  const NpyHeader c = parse_npy_header(npy(3, "{'descr':'<U10','fortran_order':False,'shape':(0, 7,),}", {}), "t");
  EXPECT_EQ(c.kind, 'U');
  EXPECT_EQ(c.item_size, 40);
  EXPECT_EQ(c.count(), 0);
  const NpyHeader o = parse_npy_header(npy(1, "{'descr': '|O', 'fortran_order': False, 'shape': (), }", {}), "t");
  EXPECT_EQ(o.kind, 'O');
  EXPECT_EQ(o.item_size, 0);
  EXPECT_EQ(o.data_bytes(), 0u);
}

TEST(Npy, ReadsStrings) {
  std::vector<unsigned char> u;  // '<U3': "ab", "\u00fc\u20ac!" , ""
  for (std::uint32_t cp : {0x61u, 0x62u, 0u, 0xFCu, 0x20ACu, 0x21u, 0u, 0u, 0u}) {
    for (int k = 0; k < 4; ++k) u.push_back(static_cast<unsigned char>(cp >> (8 * k)));
  }
  const auto a = parse_npy(npy(1, "{'descr': '<U3', 'fortran_order': False, 'shape': (3,), }", u), "t");
  EXPECT_EQ(a.strings, (std::vector<std::string>{"ab", "\xC3\xBC\xE2\x82\xAC!", ""}));
  EXPECT_TRUE(a.values.empty());
  std::vector<unsigned char> be(u.size());
  for (std::size_t i = 0; i < u.size(); i += 4) std::reverse_copy(u.begin() + i, u.begin() + i + 4, be.begin() + i);
  EXPECT_EQ(parse_npy(npy(1, "{'descr': '>U3', 'fortran_order': False, 'shape': (3,), }", be), "t").strings, a.strings);
  // 'S' keeps interior NULs and strips trailing ones; Fortran order is undone for strings too.
  const auto s = parse_npy(
      npy(1, "{'descr': '|S2', 'fortran_order': True, 'shape': (2, 2), }", {'a', 0, 'c', 'd', 0, 'b', 'e', 0}), "t");
  EXPECT_EQ(s.strings, (std::vector<std::string>{"a", std::string("\0b", 2), "cd", "e"}));
  // A code point beyond Unicode is refused.
  EXPECT_NE(input_error([] {
              parse_npy(npy(1, "{'descr': '<U1', 'fortran_order': False, 'shape': (1,), }", {0, 0, 0x11, 0}), "t");
            }).find("not a Unicode code point"),
            std::string::npos);
}

TEST(Npy, TransposesThreeDimensionalFortranOrder) {
  // Logical a[i][j][k] = 100i + 10j + k for shape (2, 3, 2), stored with i fastest.
  std::vector<std::int32_t> stored;
  for (int k = 0; k < 2; ++k)
    for (int j = 0; j < 3; ++j)
      for (int i = 0; i < 2; ++i) stored.push_back(100 * i + 10 * j + k);
  const auto a =
      parse_npy(npy(1, "{'descr': '<i4', 'fortran_order': True, 'shape': (2, 3, 2), }", bytes_of(stored)), "t");
  std::vector<double> want;
  for (int i = 0; i < 2; ++i)
    for (int j = 0; j < 3; ++j)
      for (int k = 0; k < 2; ++k) want.push_back(100 * i + 10 * j + k);
  EXPECT_EQ(a.values, want);
}

// Converts `v` stored as descr (in both byte orders where that matters) and checks double and float results.
template <typename T>
void check_conversion(const std::string& code, const std::vector<T>& v) {
  for (const char order : {'<', '>'}) {
    NpyHeader h;
    parse_npy_descr(std::string(1, order) + code, h, "t");
    const auto raw = bytes_of(v, order == '>');
    std::vector<double> d(v.size());
    std::vector<float> f(v.size());
    convert_npy_elements(h, raw.data(), v.size(), d.data());
    convert_npy_elements(h, raw.data(), v.size(), f.data());
    for (std::size_t i = 0; i < v.size(); ++i) {
      EXPECT_EQ(d[i], static_cast<double>(v[i])) << order << code << " element " << i;
      EXPECT_EQ(f[i], static_cast<float>(v[i])) << order << code << " element " << i;
    }
  }
}

TEST(Npy, ConvertsEveryNumericDtypeInBothByteOrders) {
  check_conversion<float>("f4", {0.25f, -1.5f, 3.0e30f, 0.0f});
  check_conversion<double>("f8", {0.1, -2.5e300, 7.0, -0.0});
  check_conversion<std::int8_t>("i1", {-128, 127, 0});
  check_conversion<std::int16_t>("i2", {-32768, 32767, 258});
  check_conversion<std::int32_t>("i4", {-2147483647 - 1, 2147483647, 65536});
  check_conversion<std::int64_t>("i8", {-(std::int64_t{1} << 53), std::int64_t{1} << 40, -1});
  check_conversion<std::uint8_t>("u1", {0, 255, 7});
  check_conversion<std::uint16_t>("u2", {0, 65535, 258});
  check_conversion<std::uint32_t>("u4", {0, 4294967295u, 65536});
  check_conversion<std::uint64_t>("u8", {0, std::uint64_t{1} << 63, 12345});
  NpyHeader b;
  parse_npy_descr("|b1", b, "t");
  const unsigned char raw[] = {0, 1, 2, 255};
  double d[4];
  convert_npy_elements(b, raw, 4, d);
  EXPECT_EQ(std::vector<double>(d, d + 4), (std::vector<double>{0, 1, 1, 1}));
  // A header built by hand the way a caller might (kind, size, order only) works too.
  NpyHeader manual;
  manual.kind = 'u';
  manual.item_size = 2;
  manual.big_endian = true;
  const unsigned char be[] = {1, 2};
  convert_npy_elements(manual, be, 1, d);
  EXPECT_EQ(d[0], 258.0);
  // Strings and objects are not numbers.
  NpyHeader s;
  parse_npy_descr("<U4", s, "t");
  EXPECT_NE(input_error([&] { convert_npy_elements(s, raw, 1, d); }).find("cannot be converted to numbers"),
            std::string::npos);
}

TEST(Npy, ReadsFixtures) {
  const NpyArray tiers = read_npy(fixture("tiers_u10.npy"));
  EXPECT_EQ(tiers.dtype, "<U10");
  EXPECT_EQ(tiers.shape, (std::vector<std::int64_t>{5}));
  EXPECT_EQ(tiers.strings, (std::vector<std::string>{"train", "validation", "test", "final_test", ""}));

  // np.asfortranarray((np.arange(6) * 0.25).reshape(3, 2).astype('>f4'))
  const NpyArray fb = read_npy(fixture("f4_fortran_be.npy"));
  EXPECT_EQ(fb.dtype, ">f4");
  EXPECT_TRUE(fb.fortran_order);
  EXPECT_EQ(fb.shape, (std::vector<std::int64_t>{3, 2}));
  EXPECT_EQ(fb.values, (std::vector<double>{0, 0.25, 0.5, 0.75, 1, 1.25}));

  const NpyArray s5 = read_npy(fixture("s5.npy"));
  EXPECT_EQ(s5.dtype, "|S5");
  EXPECT_EQ(s5.strings, (std::vector<std::string>{"ab", "hello", ""}));

  const NpyArray scalar = read_npy(fixture("scalar_f8.npy"));
  EXPECT_TRUE(scalar.shape.empty());
  EXPECT_EQ(scalar.values, (std::vector<double>{-1.75}));

  const NpyArray v2 = read_npy(fixture("f8_v2.npy"));
  EXPECT_EQ(v2.values, (std::vector<double>{0, 0.25, 0.5}));
  EXPECT_EQ(read_npy_header(fixture("f8_v2.npy")).data_offset, 128u);

  const NpyArray v3 = read_npy(fixture("i2_v3.npy"));
  EXPECT_EQ(v3.dtype, ">i2");
  EXPECT_EQ(v3.shape, (std::vector<std::int64_t>{3, 2}));
  EXPECT_EQ(v3.values, (std::vector<double>{-2, -1, 0, 1, 2, 3}));

  // The in-memory and file paths agree, and read_npy_file says "not a dict".
  for (const char* f : {"tiers_u10.npy", "f4_fortran_be.npy", "s5.npy", "scalar_f8.npy", "f8_v2.npy", "i2_v3.npy"}) {
    const NpyArray from_file = read_npy(fixture(f));
    const NpyArray from_bytes = parse_npy(slurp(fixture(f)), f);
    EXPECT_EQ(from_file.values, from_bytes.values) << f;
    EXPECT_EQ(from_file.strings, from_bytes.strings) << f;
    EXPECT_EQ(from_file.shape, from_bytes.shape) << f;
    const NpyFile nf = read_npy_file(fixture(f));
    EXPECT_FALSE(nf.is_dict) << f;
    EXPECT_EQ(nf.array.values, from_file.values) << f;
    EXPECT_EQ(nf.array.strings, from_file.strings) << f;
  }
}

TEST(Npy, ReadHeaderChecksTheFileLength) {
  const NpyHeader h = read_npy_header(fixture("f4_fortran_be.npy"));
  EXPECT_EQ(h.data_offset, 128u);
  EXPECT_EQ(h.data_bytes(), 24u);
  EXPECT_TRUE(h.big_endian);
  // A header promising far more data than the file holds fails before anything is allocated.
  const std::string path = ::testing::TempDir() + "popcode_npy_lying.npy";
  {
    const auto b =
        npy(1, "{'descr': '<f8', 'fortran_order': False, 'shape': (100000000000,), }", bytes_of<double>({1, 2}));
    std::ofstream(path, std::ios::binary)
        .write(reinterpret_cast<const char*>(b.data()), static_cast<std::streamsize>(b.size()));
  }
  EXPECT_NE(input_error([&] { read_npy_header(path); }).find("needs 800000000000 data bytes but the file holds 16"),
            std::string::npos);
  EXPECT_NE(input_error([&] { read_npy(path); }).find("(truncated?)"), std::string::npos);
  EXPECT_NE(input_error([&] { read_npy_file(path); }).find("(truncated?)"), std::string::npos);
  std::remove(path.c_str());
  EXPECT_NE(input_error([] { read_npy(fixture("no_such_file.npy")); }).find("cannot open"), std::string::npos);
}

TEST(Npy, RefusalsNameTheProblem) {
  const auto f8 = bytes_of<double>({1, 2, 3, 4});
  struct Case {
    std::vector<unsigned char> bytes;
    const char* expect;
  };
  auto with_header = [&](const std::string& dict) { return npy(1, dict, f8); };
  auto raw_header = [](const std::string& text) {
    std::vector<unsigned char> out = {0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0, static_cast<unsigned char>(text.size()), 0};
    // A loop, because insert() trips a GCC 12 -Warray-bounds false positive.
    for (char c : text) out.push_back(static_cast<unsigned char>(c));
    return out;
  };
  const std::vector<Case> cases = {
      {{}, "file is empty"},
      {{'P', 'K', 3, 4, 0, 0, 0, 0, 0, 0, 0, 0}, "no \\x93NUMPY magic"},
      {{0x93, 'N', 'U'}, "truncated inside the \\x93NUMPY magic"},
      {{0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0, 10}, "truncated inside the header length"},
      {{0x93, 'N', 'U', 'M', 'P', 'Y', 2, 0, 0, 0, 0, 1}, "larger than the 1 MiB"},
      {{0x93, 'N', 'U', 'M', 'P', 'Y', 1, 1, 0, 0}, "format version 1.1"},
      {{0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0, 100, 0, '{', '}'}, "header of 100 bytes but only 2 bytes follow"},
      {raw_header("[1, 2]"), "header is not a Python dict"},
      {raw_header("{'descr': '<f8', 'fortran_order': False}"), "header lacks 'shape'"},
      {raw_header("{'descr': '<f8', 'fortran_order': False, 'shape': (4,), 'extra': 1}"), "unexpected key 'extra'"},
      {raw_header("{'descr': '<f8', 'descr': '<f8', 'fortran_order': False, 'shape': (4,)}"), "two 'descr' entries"},
      {raw_header("{'descr': '<f8', 'fortran_order': False, 'shape': (4,)} junk"), "text after the closing"},
      {raw_header("{'descr': '<f8', 'fortran_order': False, 'shape': (4,) 'x'}"), "expected '}'"},
      {raw_header("{'descr': '<f8', 'fortran_order': False, 'shape': (4 4)}"), "to close the shape tuple"},
      {raw_header("{'descr': '<f8', 'fortran_order': False, 'shape': (4,"), "header dict is not terminated"},
      {raw_header("{'descr': '<f8"), "unterminated string"},
      {raw_header("{'descr': '<f8', 'fortran_order': 'True', 'shape': (4,)}"), "fortran_order is 'True'"},
      {raw_header("{'descr': '<f8', 'fortran_order': 0, 'shape': (4,)}"), "fortran_order is '0'"},
      {raw_header("{'descr': '<f8', 'fortran_order': False, 'shape': (x,)}"), "'x' in shape is not a dimension"},
      {raw_header("{'descr': '<f8', 'fortran_order': False, 'shape': (12345678901234567890,)}"), "absurd dimension"},
      {raw_header("{'descr': '<f8', 'fortran_order': False, 'shape': (3, -1)}"), "negative dimension -1"},
      {raw_header("{'descr': '<f8', 'fortran_order': False, 'shape': 4}"), "expected '('"},
      {raw_header("{'descr': 8, 'fortran_order': False, 'shape': (4,)}"), "'descr' is not a quoted string"},
      {with_header("{'descr': '<c8', 'fortran_order': False, 'shape': (4,), }"), "(complex)"},
      {with_header("{'descr': '<M8[ns]', 'fortran_order': False, 'shape': (4,), }"), "(datetime64)"},
      {with_header("{'descr': '<m8[s]', 'fortran_order': False, 'shape': (4,), }"), "(timedelta64)"},
      {with_header("{'descr': '|V8', 'fortran_order': False, 'shape': (4,), }"), "(void/structured)"},
      {with_header("{'descr': '<f16', 'fortran_order': False, 'shape': (2,), }"), "(long double)"},
      {with_header("{'descr': '<f2', 'fortran_order': False, 'shape': (4,), }"), "(float16)"},
      {with_header("{'descr': '<i3', 'fortran_order': False, 'shape': (4,), }"), "unknown integer size"},
      {with_header("{'descr': '|b2', 'fortran_order': False, 'shape': (4,), }"), "unknown bool size"},
      {with_header("{'descr': '<U0', 'fortran_order': False, 'shape': (4,), }"), "zero-length string"},
      {with_header("{'descr': '|S', 'fortran_order': False, 'shape': (4,), }"), "bytes without a length"},
      {with_header("{'descr': '<U999999999', 'fortran_order': False, 'shape': (4,), }"), "absurdly long"},
      {with_header("{'descr': '<d', 'fortran_order': False, 'shape': (4,), }"), "not a numeric or string type"},
      {with_header("{'descr': [('a', '<f8')], 'fortran_order': False, 'shape': (1,), }"), "structured dtype"},
      {with_header("{'descr': '<f8', 'fortran_order': False, 'shape': (3037000500, 3037000500), }"),
       "more than 2^63 bytes"},
      {with_header("{'descr': '|O', 'fortran_order': False, 'shape': (), }"), "pickled Python objects"},
      {with_header("{'descr': '|O', 'fortran_order': False, 'shape': (4,), }"), "object array of shape (4,)"},
      {with_header("{'descr': '<f8', 'fortran_order': False, 'shape': (5,), }"),
       "shape (5,) of <f8 needs 40 data bytes but the file holds 32 (truncated?)"},
  };
  for (const Case& c : cases) {
    const std::string msg = input_error([&] { parse_npy(c.bytes, "case.npy"); });
    EXPECT_NE(msg.find(c.expect), std::string::npos) << "expected '" << c.expect << "' in: " << msg;
    EXPECT_EQ(msg.rfind("case.npy: ", 0), 0u) << msg;
  }
  std::vector<std::int64_t> dims(65, 1);
  std::string many = "{'descr': '<f8', 'fortran_order': False, 'shape': (";
  for (std::size_t i = 0; i < dims.size(); ++i) many += "1, ";
  many += "), }";
  EXPECT_NE(input_error([&] { parse_npy_header(npy(1, many, {}), "t"); }).find("more than 64 dimensions"),
            std::string::npos);
}

TEST(Npy, NpyFileDispatchesOnTheDtype) {
  const NpyFile plain = parse_npy_file(npy(1, kF8Dict, bytes_of<double>({1, 2, 3, 4})), "t");
  EXPECT_FALSE(plain.is_dict);
  EXPECT_EQ(plain.array.values, (std::vector<double>{1, 2, 3, 4}));
  // A 0-d object array goes to the pickle reader (here: an empty dict, protocol 2).
  const NpyFile d =
      parse_npy_file(npy(1, "{'descr': '|O', 'fortran_order': False, 'shape': (), }", {0x80, 2, '}', '.'}), "t");
  EXPECT_TRUE(d.is_dict);
  EXPECT_TRUE(d.dict.empty());
  EXPECT_NE(input_error([] {
              parse_npy_file(npy(1, "{'descr': '|O', 'fortran_order': False, 'shape': (2,), }", {}), "t");
            }).find("object array of shape (2,)"),
            std::string::npos);
}

}  // namespace
}  // namespace popcode
