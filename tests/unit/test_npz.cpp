// Tests of the .npz reader (io/npz.hpp) on the fixtures of tests/fixtures/numpy (np.savez, np.savez_compressed
// and a hand-built all-Zip64 archive, values spelled out below), the data_file_offset contract (bytes read at
// that offset are the member's elements), and the hostile corpus: every npy/npz line of
// tests/hostile/MANIFEST.tsv must fail with an InputError containing the listed text.
#include <gtest/gtest.h>
#include <zip.h>

#include <cstdio>
#include <fstream>
#include <functional>
#include <iterator>
#include <span>

#include "io/npy.hpp"
#include "io/npz.hpp"
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

std::string source_path(const std::string& rel) { return std::string(POPCODE_SOURCE_DIR) + "/" + rel; }

const std::vector<double> kResp = {0, 0.25, 0.5, 0.75, 1, 1.25, 1.5, 1.75, 2, 2.25, 2.5, 2.75, 3, 3.25, 3.5};
const std::vector<double> kStimuli = {0.5, 1.5, 2.5, 3.5, 4.5};
const std::vector<std::string> kTiers = {"train", "train", "validation", "test", "final_test"};

void expect_members(const std::vector<NpzMember>& m, bool compressed) {
  ASSERT_EQ(m.size(), 3u);
  EXPECT_EQ(m[0].name, "resp");
  EXPECT_EQ(m[0].header.dtype, "<f4");
  EXPECT_EQ(m[0].header.shape, (std::vector<std::int64_t>{5, 3}));
  EXPECT_EQ(m[1].name, "stimuli");
  EXPECT_EQ(m[1].header.dtype, "<f8");
  EXPECT_EQ(m[1].header.shape, (std::vector<std::int64_t>{5}));
  EXPECT_EQ(m[2].name, "tiers");
  EXPECT_EQ(m[2].header.dtype, "<U10");
  EXPECT_EQ(m[2].header.kind, 'U');
  const std::uint64_t sizes[] = {128 + 60, 128 + 40, 128 + 200};  // the members are whole .npy streams
  for (std::size_t i = 0; i < 3; ++i) {
    EXPECT_EQ(m[i].compressed, compressed) << i;
    EXPECT_EQ(m[i].uncompressed_size, sizes[i]) << i;
    EXPECT_EQ(m[i].header.data_offset, 128u) << i;
    if (compressed) {
      EXPECT_LT(m[i].compressed_size, sizes[i]) << i;
      EXPECT_EQ(m[i].data_file_offset, 0u) << i;
    } else {
      EXPECT_EQ(m[i].compressed_size, sizes[i]) << i;
    }
  }
  if (!compressed) {
    // np.savez layout: local header (30) + name + 20-byte Zip64 extra, then the 128-byte npy header.
    EXPECT_EQ(m[0].data_file_offset, 30u + 8 + 20 + 128);
    EXPECT_EQ(m[1].data_file_offset, 30u + 8 + 20 + 188 + 30 + 11 + 20 + 128);
    EXPECT_EQ(m[2].data_file_offset, 30u + 8 + 20 + 188 + 30 + 11 + 20 + 168 + 30 + 9 + 20 + 128);
  }
}

void expect_arrays(const std::function<NpyArray(const std::string&)>& read) {
  const NpyArray resp = read("resp");
  EXPECT_EQ(resp.shape, (std::vector<std::int64_t>{5, 3}));
  EXPECT_EQ(resp.values, kResp);
  EXPECT_EQ(read("stimuli.npy").values, kStimuli);
  const NpyArray tiers = read("tiers");
  EXPECT_EQ(tiers.dtype, "<U10");
  EXPECT_EQ(tiers.strings, kTiers);
}

TEST(Npz, ReadsStoredDeflatedAndZip64Archives) {
  for (const char* f : {"resp_stored.npz", "resp_deflated.npz", "resp_zip64.npz"}) {
    SCOPED_TRACE(f);
    const bool compressed = std::string(f) == "resp_deflated.npz";
    expect_members(list_npz(fixture(f)), compressed);
    expect_arrays([&](const std::string& m) { return read_npz_member(fixture(f), m); });
    const auto bytes = slurp(fixture(f));
    expect_members(list_npz_buffer(bytes, f), compressed);
    expect_arrays([&](const std::string& m) { return read_npz_member_buffer(bytes, f, m); });
  }
}

TEST(Npz, DataFileOffsetPointsAtTheElements) {
  for (const char* f : {"resp_stored.npz", "resp_zip64.npz"}) {
    SCOPED_TRACE(f);
    const auto bytes = slurp(fixture(f));
    for (const NpzMember& m : list_npz(fixture(f))) {
      ASSERT_GT(m.data_file_offset, 0u);
      ASSERT_LE(m.data_file_offset + m.header.data_bytes(), bytes.size());
      // Read the elements straight from the file, as a caller reading neuron columns would.
      std::ifstream in(fixture(f), std::ios::binary);
      in.seekg(static_cast<std::streamoff>(m.data_file_offset));
      std::vector<unsigned char> raw(static_cast<std::size_t>(m.header.data_bytes()));
      in.read(reinterpret_cast<char*>(raw.data()), static_cast<std::streamsize>(raw.size()));
      ASSERT_TRUE(in);
      const NpyArray whole = read_npz_member(fixture(f), m.name);
      if (m.header.kind == 'U') {
        EXPECT_EQ(decode_npy_data(m.header, raw, "t").strings, whole.strings);
      } else {
        std::vector<double> v(static_cast<std::size_t>(m.header.count()));
        convert_npy_elements(m.header, raw.data(), v.size(), v.data());
        EXPECT_EQ(v, whole.values) << m.name;
        // Column 1 of resp (stimuli x neurons, C order) by stride arithmetic alone.
        if (m.name == "resp") {
          std::vector<float> col(5);
          for (std::size_t r = 0; r < 5; ++r) {
            convert_npy_elements(m.header, raw.data() + (r * 3 + 1) * 4, 1, &col[r]);
            EXPECT_EQ(col[r], kResp[r * 3 + 1]);
          }
        }
      }
    }
    // The in-memory listing gives the same offsets.
    const auto from_file = list_npz(fixture(f));
    const auto from_buffer = list_npz_buffer(bytes, f);
    for (std::size_t i = 0; i < from_file.size(); ++i)
      EXPECT_EQ(from_file[i].data_file_offset, from_buffer[i].data_file_offset);
  }
}

TEST(Npz, MemberLookup) {
  EXPECT_NE(input_error([] { read_npz_member(fixture("resp_stored.npz"), "nope"); }).find("no member 'nope'"),
            std::string::npos);
  EXPECT_NE(input_error([] { list_npz(fixture("no_such.npz")); }).find("cannot open"), std::string::npos);
}

// Writes a zip with the given members (libzip), stored or deflated.
void write_zip(const std::string& path, const std::vector<std::pair<std::string, std::vector<unsigned char>>>& members,
               bool deflate) {
  std::remove(path.c_str());
  int err = 0;
  zip_t* z = zip_open(path.c_str(), ZIP_CREATE | ZIP_TRUNCATE, &err);
  ASSERT_NE(z, nullptr);
  for (const auto& [name, data] : members) {
    zip_source_t* s = zip_source_buffer(z, data.data(), data.size(), 0);
    ASSERT_NE(s, nullptr);
    const zip_int64_t i = zip_file_add(z, name.c_str(), s, ZIP_FL_OVERWRITE);
    ASSERT_GE(i, 0);
    zip_set_file_compression(z, static_cast<zip_uint64_t>(i), deflate ? ZIP_CM_DEFLATE : ZIP_CM_STORE, 0);
  }
  ASSERT_EQ(zip_close(z), 0);
}

TEST(Npz, RefusesObjectMembersAndCorruptData) {
  const std::string path = ::testing::TempDir() + "popcode_npz_object.npz";
  write_zip(path, {{"d.npy", slurp(fixture("dict_pickle_v3.npy"))}, {"s.npy", slurp(fixture("s5.npy"))}}, false);
  const auto members = list_npz(path);
  ASSERT_EQ(members.size(), 2u);
  EXPECT_EQ(members[0].header.kind, 'O');
  EXPECT_EQ(read_npz_member(path, "s").strings, (std::vector<std::string>{"ab", "hello", ""}));
  EXPECT_NE(input_error([&] { read_npz_member(path, "d"); }).find("member 'd.npy': holds pickled Python objects"),
            std::string::npos);

  // A corrupt deflate stream: whatever libzip reports (CRC or zlib), it is an InputError naming the member.
  auto deflated = slurp(fixture("resp_deflated.npz"));
  const std::vector<NpzMember> m = list_npz_buffer(deflated, "d.npz");
  for (std::size_t i = 90; i < 100; ++i) deflated[i] ^= 0x55;  // inside resp's compressed data (it starts at 58)
  EXPECT_NE(input_error([&] { read_npz_member_buffer(deflated, "d.npz", "resp"); }).find("d.npz: member 'resp.npy'"),
            std::string::npos);

  // A flipped data byte of a stored member: listing still works (headers only), reading reports the CRC.
  auto stored = slurp(fixture("resp_stored.npz"));
  stored[static_cast<std::size_t>(list_npz_buffer(stored, "s.npz")[1].data_file_offset) + 3] ^= 1;
  EXPECT_EQ(list_npz_buffer(stored, "s.npz").size(), 3u);
  EXPECT_NE(input_error([&] {
              read_npz_member_buffer(stored, "s.npz", "stimuli");
            }).find("member 'stimuli.npy': CRC mismatch"),
            std::string::npos);
  std::remove(path.c_str());
}

// The manifest's numpy lines: <file> TAB <npy|npz> TAB <expected substring>.
struct HostileCase {
  std::string file, format, expect;
};

std::vector<HostileCase> numpy_manifest() {
  std::ifstream in(source_path("tests/hostile/MANIFEST.tsv"));
  EXPECT_TRUE(in);
  std::vector<HostileCase> out;
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    const auto t1 = line.find('\t'), t2 = line.find('\t', t1 + 1);
    if (t1 == std::string::npos || t2 == std::string::npos) continue;
    HostileCase c{line.substr(0, t1), line.substr(t1 + 1, t2 - t1 - 1), line.substr(t2 + 1)};
    if (c.format == "npy" || c.format == "npz") out.push_back(c);
  }
  return out;
}

void read_all_npz_members(const std::string& path) {
  for (const NpzMember& m : list_npz(path)) read_npz_member(path, m.name);
}

void read_all_npz_members(std::span<const unsigned char> bytes, const std::string& name) {
  for (const NpzMember& m : list_npz_buffer(bytes, name)) read_npz_member_buffer(bytes, name, m.name);
}

TEST(Npz, HostileCorpusFailsWithTheListedMessage) {
  const auto cases = numpy_manifest();
  EXPECT_GE(cases.size(), 18u);
  for (const HostileCase& c : cases) {
    SCOPED_TRACE(c.file);
    const std::string path = source_path("tests/hostile/" + c.file);
    const auto bytes = slurp(path);
    std::string from_file, from_bytes;
    if (c.format == "npy") {
      from_file = input_error([&] { read_npy_file(path); });
      from_bytes = input_error([&] { parse_npy_file(bytes, path); });
    } else {
      from_file = input_error([&] { read_all_npz_members(path); });
      from_bytes = input_error([&] { read_all_npz_members(bytes, path); });
    }
    EXPECT_NE(from_file.find(c.expect), std::string::npos) << "expected '" << c.expect << "' in: " << from_file;
    EXPECT_NE(from_bytes.find(c.expect), std::string::npos) << "expected '" << c.expect << "' in: " << from_bytes;
    EXPECT_NE(from_file.find(c.file), std::string::npos) << "the message should name the file: " << from_file;
  }
}

}  // namespace
}  // namespace popcode
