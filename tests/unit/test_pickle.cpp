// Tests of the pickled dict-of-arrays reader (io/pickle.hpp): numpy's own output for protocols 2 to 5 (fixtures
// written by tests/fixtures/numpy/make_fixtures.py, values spelled out below), and hand-assembled pickles for
// the variants numpy does not produce on this machine and for every refusal.
#include <gtest/gtest.h>

#include <cstring>
#include <fstream>
#include <iterator>

#include "io/npy.hpp"
#include "io/pickle.hpp"
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

using Shape = std::vector<std::int64_t>;

void expect_numbers(const std::map<std::string, NpyArray>& d, const std::string& key, const std::string& dtype,
                    const Shape& shape, const std::vector<double>& values) {
  const auto it = d.find(key);
  ASSERT_NE(it, d.end()) << key;
  EXPECT_EQ(it->second.dtype, dtype) << key;
  EXPECT_EQ(it->second.shape, shape) << key;
  EXPECT_EQ(it->second.values, values) << key;
  EXPECT_TRUE(it->second.strings.empty()) << key;
}

void expect_strings(const std::map<std::string, NpyArray>& d, const std::string& key, const std::string& dtype,
                    const Shape& shape, const std::vector<std::string>& strings) {
  const auto it = d.find(key);
  ASSERT_NE(it, d.end()) << key;
  EXPECT_EQ(it->second.dtype, dtype) << key;
  EXPECT_EQ(it->second.shape, shape) << key;
  EXPECT_EQ(it->second.strings, strings) << key;
  EXPECT_TRUE(it->second.values.empty()) << key;
}

// The dict of make_fixtures.py's base_dict().
void expect_base_dict(const std::map<std::string, NpyArray>& d) {
  EXPECT_EQ(d.size(), 7u);
  expect_numbers(d, "sresp", "<f4", {3, 4}, {0, 0.25, 0.5, 0.75, 1, 1.25, 1.5, 1.75, 2, 2.25, 2.5, 2.75});
  expect_numbers(d, "istim", "<f8", {4}, {1, 1.5, 2, 2.5});
  expect_numbers(d, "xyz", "<i8", {3, 3}, {-4, -3, -2, -1, 0, 1, 2, 3, 4});
  expect_numbers(d, "run", "|b1", {4}, {1, 0, 1, 1});
  expect_strings(d, "name", "<U3", {}, {"abc"});
  expect_numbers(d, "n", "<i8", {}, {7});
  expect_numbers(d, "f", "<f8", {}, {0.5});
}

TEST(Pickle, ReadsNumpyDictsOfEveryProtocol) {
  // v3: np.save(dict); v2: protocol 2 (bytes as _codecs.encode); v4: FRAME, STACK_GLOBAL, MEMOIZE;
  // v5: numpy.core.numeric._frombuffer with BYTEARRAY8.
  for (const char* f : {"dict_pickle_v3.npy", "dict_pickle_v2.npy", "dict_pickle_v4.npy", "dict_pickle_v5.npy"}) {
    SCOPED_TRACE(f);
    const NpyFile file = read_npy_file(fixture(f));
    ASSERT_TRUE(file.is_dict);
    expect_base_dict(file.dict);
    std::ifstream in(fixture(f), std::ios::binary);
    const std::vector<unsigned char> bytes{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
    const NpyFile parsed = parse_npy_file(bytes, f);
    ASSERT_TRUE(parsed.is_dict);
    expect_base_dict(parsed.dict);
  }
}

TEST(Pickle, ReadsEveryDtypeAndLayout) {
  const NpyFile file = read_npy_file(fixture("dict_mixed.npy"));
  ASSERT_TRUE(file.is_dict);
  const auto& d = file.dict;
  EXPECT_EQ(d.size(), 21u);
  expect_numbers(d, "be_f8", ">f8", {2, 3}, {0, 0.25, 0.5, 0.75, 1, 1.25});
  expect_numbers(d, "fo_i4", "<i4", {2, 3}, {-2, -1, 0, 1, 2, 3});
  EXPECT_TRUE(d.at("fo_i4").fortran_order);
  expect_numbers(d, "be_fo_f4", ">f4", {2, 3}, {0, 0.5, 1, 1.5, 2, 2.5});
  EXPECT_TRUE(d.at("be_fo_f4").fortran_order);
  expect_strings(d, "tiers", "<U10", {4}, {"train", "validation", "test", "final_test"});
  expect_strings(d, "be_u", ">U3", {2}, {"ab", "\xC3\xBC\xE2\x82\xAC"});
  expect_strings(d, "sbytes", "|S3", {2}, {"ab", "c"});
  expect_numbers(d, "sc_f4", "<f4", {}, {1.5});
  expect_numbers(d, "sc_i8", "<i8", {}, {-3});
  expect_numbers(d, "sc_b", "|b1", {}, {1});
  expect_numbers(d, "zero_d", "<f8", {}, {2.25});
  expect_numbers(d, "empty", "<f4", {0, 3}, {});
  expect_numbers(d, "u2", "<u2", {2}, {1, 65535});
  expect_numbers(d, "i1", "|i1", {2}, {-128, 127});
  expect_numbers(d, "u8", "<u8", {1}, {18446744073709551615.0});
  expect_numbers(d, "i2", ">i2", {2}, {-300, 300});
  expect_numbers(d, "neg", "<i8", {}, {-5});
  expect_numbers(d, "big", "<i8", {}, {1099511627776.0});
  expect_numbers(d, "flag", "|b1", {}, {1});
  expect_numbers(d, "off", "|b1", {}, {0});
  expect_strings(d, "bs", "|S3", {}, {"raw"});
  expect_strings(d, "ustr", "<U1", {}, {"\xC3\xBC"});
}

// Assembles pickles opcode by opcode.
struct P {
  std::vector<unsigned char> b;
  P& op(int c) {
    b.push_back(static_cast<unsigned char>(c));
    return *this;
  }
  P& raw(std::string_view s) {
    b.insert(b.end(), s.begin(), s.end());
    return *this;
  }
  P& le(std::uint64_t v, int n) {
    for (int k = 0; k < n; ++k) op(static_cast<int>((v >> (8 * k)) & 0xFF));
    return *this;
  }
  P& proto(int v) { return op(0x80).op(v); }
  P& global(std::string_view module, std::string_view name) { return op('c').raw(module).op('\n').raw(name).op('\n'); }
  P& str(std::string_view s) { return op('X').le(s.size(), 4).raw(s); }
  P& py2str(std::string_view s) { return op('U').op(static_cast<int>(s.size())).raw(s); }
  P& bytes(std::string_view s) { return op('B').le(s.size(), 4).raw(s); }
  P& integer(std::int64_t v) { return op('J').le(static_cast<std::uint64_t>(v), 4); }
  P& mark() { return op('('); }
  P& none() { return op('N'); }
  P& boolean(bool v) { return op(v ? 0x88 : 0x89); }
  P& stop() { return op('.'); }

  // A dtype the way numpy pickles it: dtype(typestr, False, True) then BUILD with the version 3 state.
  P& dtype(std::string_view typestr, std::string_view order, std::int64_t elsize = -1, bool fields = false) {
    global("numpy", "dtype").str(typestr).boolean(false).boolean(true).op(0x87).op('R');
    mark().integer(3).str(order).none();
    if (fields) {
      mark().str("a").op('t');  // names: a structured dtype
    } else {
      none();
    }
    none().integer(elsize).integer(-1).integer(0).op('t').op('b');
    return *this;
  }
  // An array the way numpy 1.x pickles it: _reconstruct(ndarray, (0,), b'b') then BUILD.
  P& array(const Shape& shape, std::string_view typestr, std::string_view order, bool fortran, std::string_view data,
           std::string_view module = "numpy.core.multiarray", std::int64_t elsize = -1) {
    global(module, "_reconstruct").global("numpy", "ndarray").integer(0).op(0x85).bytes("b").op(0x87).op('R');
    mark().integer(1).mark();
    for (std::int64_t d : shape) integer(d);
    op('t').dtype(typestr, order, elsize).boolean(fortran).bytes(data).op('t').op('b');
    return *this;
  }
  // A plain dict {key: <value written by f>} (np.save wraps it in an object array; both are accepted).
  template <typename F>
  P& dict_of(std::string_view key, F&& f) {
    proto(3).op('}').mark().str(key);
    f(*this);
    return op('u').stop();
  }
};

std::string f4_bytes(std::initializer_list<float> v) {
  std::string s(v.size() * 4, '\0');
  std::size_t i = 0;
  for (float x : v) std::memcpy(s.data() + 4 * i++, &x, 4);
  return s;
}

std::map<std::string, NpyArray> parse(const P& p) { return parse_pickled_dict(p.b, "t.npy"); }

std::string refusal(const P& p) {
  return input_error([&] { parse(p); });
}

TEST(Pickle, HandAssembledArrays) {
  const std::string data = f4_bytes({1, 2, 3, 4, 5, 6});
  const auto d = parse(P().dict_of("x", [&](P& p) { p.array({2, 3}, "f4", "<", false, data); }));
  expect_numbers(d, "x", "<f4", {2, 3}, {1, 2, 3, 4, 5, 6});
  // numpy 2 spells the module numpy._core; Fortran order is undone.
  const auto d2 = parse(P().dict_of("x", [&](P& p) {
    p.array({2, 3}, "f4", "<", true, data, "numpy._core.multiarray");
  }));
  expect_numbers(d2, "x", "<f4", {2, 3}, {1, 3, 5, 2, 4, 6});
  // Python 2 strings (SHORT_BINSTRING) serve as key, type string and data alike.
  P py2;
  py2.proto(2).op('}').mark().py2str("k");
  py2.global("numpy.core.multiarray", "_reconstruct")
      .global("numpy", "ndarray")
      .integer(0)
      .op(0x85)
      .py2str("b")
      .op(0x87)
      .op('R');
  py2.mark().integer(1).mark().integer(2).op('t');
  py2.global("numpy", "dtype").py2str("f4").boolean(false).boolean(true).op(0x87).op('R');
  py2.mark().integer(3).py2str("<").none().none().none().integer(-1).integer(-1).integer(0).op('t').op('b');
  py2.boolean(false).py2str(f4_bytes({0.5, 0.25})).op('t').op('b').op('u').stop();
  expect_numbers(parse(py2), "k", "<f4", {2}, {0.5, 0.25});
  // A flexible dtype without a length takes it from the state's element size.
  const auto d3 =
      parse(P().dict_of("s", [](P& p) { p.array({2}, "S", "|", false, "abcd", "numpy.core.multiarray", 2); }));
  expect_strings(d3, "s", "|S2", {2}, {"ab", "cd"});
  // Protocol 2's empty bytes: __builtin__.bytes().
  P empty;
  empty.proto(2).op('}').mark().str("e");
  empty.global("numpy.core.multiarray", "_reconstruct")
      .global("numpy", "ndarray")
      .integer(0)
      .op(0x85)
      .bytes("b")
      .op(0x87)
      .op('R');
  empty.mark().integer(1).mark().integer(0).op('t').dtype("f8", "<").boolean(false);
  empty.global("__builtin__", "bytes").op(')').op('R').op('t').op('b').op('u').stop();
  expect_numbers(parse(empty), "e", "<f8", {0}, {});
}

TEST(Pickle, PythonScalars) {
  P p;
  p.proto(2).op('}').mark();
  p.str("i1").op('K').op(200);
  p.str("i2").op('M').le(60000, 2);
  p.str("neg").integer(-7);
  p.str("l0").op(0x8a).op(0);
  p.str("lneg").op(0x8a).op(1).op(0xFE);
  p.str("lmax").op(0x8a).op(9).le(0x7FFFFFFFFFFFFFFFull, 8).op(0);
  p.str("lmin").op(0x8a).op(8).le(0x8000000000000000ull, 8);
  p.str("g").op('G').raw(std::string("\x3F\xF8\0\0\0\0\0\0", 8));  // 1.5, big-endian
  p.str("t").boolean(true);
  p.str("u").op(0x8c).op(2).raw("\xC3\xBC");
  p.str("u8").op(0x8d).le(1, 8).raw("z");
  p.str("b").op('C').op(1).raw("q");
  p.str("b8").op(0x8e).le(2, 8).raw("rs");
  p.str("ba").op(0x96).le(0, 8);
  p.op('u').stop();
  const auto d = parse(p);
  expect_numbers(d, "i1", "<i8", {}, {200});
  expect_numbers(d, "i2", "<i8", {}, {60000});
  expect_numbers(d, "neg", "<i8", {}, {-7});
  expect_numbers(d, "l0", "<i8", {}, {0});
  expect_numbers(d, "lneg", "<i8", {}, {-2});
  expect_numbers(d, "lmax", "<i8", {}, {9223372036854775807.0});
  expect_numbers(d, "lmin", "<i8", {}, {-9223372036854775808.0});
  expect_numbers(d, "g", "<f8", {}, {1.5});
  expect_numbers(d, "t", "|b1", {}, {1});
  expect_strings(d, "u", "<U1", {}, {"\xC3\xBC"});
  expect_strings(d, "u8", "<U1", {}, {"z"});
  expect_strings(d, "b", "|S1", {}, {"q"});
  expect_strings(d, "b8", "|S2", {}, {"rs"});
  expect_strings(d, "ba", "|S1", {}, {""});
}

TEST(Pickle, MemoAndFrames) {
  // LONG_BINPUT / LONG_BINGET with a large slot; a FRAME that fits; a later key overwrites an earlier one.
  P p;
  p.proto(4).op(0x95).le(0, 8).op('}').op('r').le(0xFFFFFFF0u, 4).mark();
  p.str("a").integer(1).str("a").integer(2).op('u');
  p.op('j').le(0xFFFFFFF0u, 4).str("b").integer(3).op('s').stop();
  const auto d = parse(p);
  expect_numbers(d, "a", "<i8", {}, {2});
  expect_numbers(d, "b", "<i8", {}, {3});
}

TEST(Pickle, RefusesWhatNumpyDoesNotWrite) {
  const std::string data = f4_bytes({1, 2, 3, 4, 5, 6});
  struct Case {
    P p;
    const char* expect;
  };
  std::vector<Case> cases;
  auto add = [&](P p, const char* expect) { cases.push_back({std::move(p), expect}); };
  add(P().proto(3).global("os", "system").str("echo").op(0x85).op('R').stop(), "forbidden global os.system");
  add(P().proto(4).op(0x8c).op(8).raw("builtins").op(0x8c).op(4).raw("eval").op(0x93).stop(),
      "forbidden global builtins.eval");
  add(P().proto(3).global("numpy", "load").stop(), "forbidden global numpy.load");
  add(P().proto(2).op('I').raw("1\n").stop(), "unsupported pickle opcode 0x49");
  add(P().proto(6).op('}').stop(), "pickle protocol 6");
  add(P().proto(3).op(0x85).stop(), "stack underflow");
  add(P().proto(3).op('t').stop(), "no MARK");
  add(P().proto(3).stop(), "stack underflow");
  add(P().proto(3).op('X').le(100, 4).raw("ab"), "string of 100 bytes but only 2 bytes remain");
  add(P().proto(3).op(0x8e).le(~std::uint64_t{0}, 8), "bytes of 18446744073709551615 bytes but only 0 bytes remain");
  add(P().proto(3).op('T').le(0xFFFFFFFF, 4), "negative length");
  add(P().proto(4).op(0x95).le(1000, 8).op('}').stop(), "frame of 1000 bytes but only 2 bytes remain");
  add(P().proto(3).op('h').op(7).stop(), "memo slot 7 was never set");
  add(P().proto(3).op('q').op(0).stop(), "stack underflow");
  add(P().proto(3).op('}').op('}'), "without a STOP opcode");
  add(P().proto(3).op('}').op('q'), "memo index of 1 bytes but only 0 bytes remain");
  add(P().proto(3).none().integer(1).op('a').stop(), "APPEND to None, not a list");
  add(P().proto(3).op('}').mark().integer(1).op('u').stop(), "odd number");
  add(P().proto(3).op(']').mark().integer(1).integer(2).op('u').stop(), "SETITEMS on a list of 0 items");
  add(P().proto(3).op(']').op(')').op('b').stop(), "BUILD (setting the state) of a list");
  add(P().proto(3).op(']').op('q').op(0).op('h').op(0).op('a').stop(), "holds a list of 1 item, not a dict");
  add(P().proto(3).op('}').integer(1).integer(2).op('s').stop(), "dict key 0 is the integer 1, not a string");
  add(P().dict_of("a", [](P& p) { p.none(); }), "key 'a': holds None");
  add(P().dict_of("a", [](P& p) { p.op(']'); }), "key 'a': holds a list of 0 items");
  add(P().dict_of("a", [](P& p) { p.op('}'); }), "key 'a': holds a dict of 0 items");
  add(P().dict_of("a", [](P& p) { p.op(')'); }), "key 'a': holds a tuple of 0 items");
  add(P().dict_of("a", [](P& p) { p.global("numpy", "ndarray"); }), "key 'a': holds the global numpy.ndarray");
  add(P().dict_of("a",
                  [&](P& p) {
                    p.array({2, 3}, "f4", "<", false, data.substr(1));
                  }),
      "key 'a': shape (2, 3) of <f4 needs 24 data bytes but the pickle holds 23");
  add(P().dict_of("a", [&](P& p) { p.array({2, -3}, "f4", "<", false, data); }), "key 'a': negative dimension");
  add(P().dict_of("a", [&](P& p) { p.array({2, 3}, "c8", "<", false, data); }), "key 'a': dtype '<c8' (complex)");
  add(P().dict_of("a", [&](P& p) { p.array({1}, "O8", "|", false, ""); }), "key 'a': holds an object array");
  add(P().dict_of("a", [&](P& p) { p.array({2}, "U2", "<", false, "abcdefghijklmnop", "numpy.core.multiarray", 4); }),
      "has 8 bytes per element but its state says 4");
  add(P().dict_of("a",
                  [](P& p) {
                    p.global("numpy.core.multiarray", "_reconstruct")
                        .global("numpy", "ndarray")
                        .integer(0)
                        .op(0x85)
                        .bytes("b")
                        .op(0x87)
                        .op('R');
                  }),
      "key 'a': a numpy array whose contents were never set");
  add(P().dict_of(
          "a",
          [](P& p) { p.global("numpy.core.multiarray", "_reconstruct").global("numpy", "dtype").op(0x85).op('R'); }),
      "_reconstruct of something other than numpy.ndarray");
  add(P().dict_of("a", [](P& p) { p.dtype("f4", "<", -1, true); }), "named fields");
  add(P().dict_of("a", [](P& p) { p.global("numpy", "dtype").integer(4).op(0x85).op('R'); }),
      "instead of a type string");
  add(P().dict_of("a", [](P& p) { p.global("numpy", "ndarray").op(')').op('R'); }), "calling the global numpy.ndarray");
  add(P().dict_of("a", [](P& p) { p.integer(1).op(')').op('R'); }), "call of the integer 1, which is not a callable");
  add(P().dict_of(
          "a",
          [](P& p) {
            p.global("numpy", "dtype").mark().integer(1).integer(2).integer(3).integer(4).integer(5).op('t').op('R');
          }),
      "call of the global numpy.dtype with 5 arguments");
  add(P().dict_of("a", [](P& p) { p.global("_codecs", "encode").str("x").str("utf8").op(0x86).op('R'); }),
      "only latin1");
  add(P().dict_of("a", [](P& p) { p.global("_codecs", "encode").str("\xE2\x82\xAC").str("latin1").op(0x86).op('R'); }),
      "code point 0x20AC has no latin1 byte");
  add(P().dict_of("a", [](P& p) { p.global("_codecs", "encode").str("\xE2\x82").str("latin1").op(0x86).op('R'); }),
      "malformed UTF-8");
  add(P().dict_of("a", [](P& p) { p.global("builtins", "bytes").integer(3).op(0x85).op('R'); }), "bytes() with");
  add(P().dict_of("a", [](P& p) { p.op(0x8a).op(9).le(~std::uint64_t{0}, 8).op(0); }), "does not fit in 64 bits");
  add(P().dict_of("a", [](P& p) { p.op(0x8a).op(10).le(0, 8).op(0).op(1); }), "does not fit in 64 bits");
  add(P().dict_of("a",
                  [](P& p) {
                    p.global("numpy", "dtype").str("f4").op(0x85).op('R').mark().integer(3).str("?").op('t').op('b');
                  }),
      "byte order is the string '?'");
  for (const Case& c : cases) {
    const std::string msg = refusal(c.p);
    EXPECT_NE(msg.find(c.expect), std::string::npos) << "expected '" << c.expect << "' in: " << msg;
    EXPECT_EQ(msg.rfind("t.npy: ", 0), 0u) << msg;
  }
}

TEST(Pickle, BoundsStackMarksAndExpansion) {
  P marks;
  marks.proto(3);
  marks.b.insert(marks.b.end(), (std::size_t{1} << 20) + 1, '(');
  EXPECT_NE(refusal(marks).find("too many nested MARKs"), std::string::npos);
  P deep;
  deep.proto(3);
  deep.b.insert(deep.b.end(), (std::size_t{1} << 20) + 1, 'N');
  EXPECT_NE(refusal(deep).find("stack deeper than"), std::string::npos);
  // One 256 KiB u1 array stored under 64 keys would take 64 x 2 MiB as doubles: refused once past the budget.
  P wide;
  wide.proto(3).op('}').mark().str("k0").array({1 << 18}, "u1", "|", false, std::string(1 << 18, '\1')).op('q').op(0);
  for (int k = 1; k < 64; ++k) wide.str("k" + std::to_string(k)).op('h').op(0);
  wide.op('u').stop();
  EXPECT_NE(refusal(wide).find("expand to more than"), std::string::npos);
}

}  // namespace
}  // namespace popcode
