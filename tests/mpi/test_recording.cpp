// The recording format: parallel write and neuron-block reads, and validation messages for bad files.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>

#include "io/h5.hpp"
#include "io/recording.hpp"
#include "io/recording_writer.hpp"
#include "mpi/test_util.hpp"

namespace popcode {
namespace {

float resp_value(std::int64_t p, std::int64_t n) { return static_cast<float>(p) + 0.001f * static_cast<float>(n); }

// Writes a valid recording with P presentations, N neurons, 3 images shown twice, 2 gray screens.
void write_valid(const Context& ctx, const std::string& path, std::int64_t n, bool with_nans = false) {
  RecordingLayout layout;
  layout.presentations = 8;
  layout.neurons = n;
  layout.images = 3;
  layout.spont_timepoints = 5;
  layout.positions = true;
  layout.source = "test";
  RecordingWriter w(ctx, path, layout);
  const Range mine = BlockLayout(n, ctx.size()).range(ctx.rank());
  std::vector<float> resp(static_cast<std::size_t>(8 * mine.size())), spont(static_cast<std::size_t>(5 * mine.size()));
  for (std::int64_t p = 0; p < 8; ++p)
    for (std::int64_t c = 0; c < mine.size(); ++c) resp[static_cast<std::size_t>(p * mine.size() + c)] = resp_value(p, mine.begin + c);
  if (with_nans) {
    for (std::int64_t c = 0; c < mine.size(); ++c) {
      if (mine.begin + c == 1) resp[static_cast<std::size_t>(2 * mine.size() + c)] = std::numeric_limits<float>::quiet_NaN();
      if (mine.begin + c == n - 1) resp[static_cast<std::size_t>(3 * mine.size() + c)] = std::numeric_limits<float>::infinity();
    }
  }
  w.write_columns("/responses", mine, resp);
  w.write_columns("/spontaneous", mine, spont);
  std::vector<double> pos(static_cast<std::size_t>(3 * mine.size()), 1.0);
  std::vector<std::int32_t> planes(static_cast<std::size_t>(mine.size()), 0);
  w.write_rows<double>("/neurons/position", mine, pos);
  w.write_rows<std::int32_t>("/neurons/plane", mine, planes);
  RecordingMetadata meta;
  meta.stimulus_id = {0, 1, -1, 2, 2, 0, -1, 1};
  meta.class_label = {0, 1, 0};
  meta.class_names = {"a", "b"};
  w.finish(meta);
}

TEST(Recording, WritesAndReadsNeuronBlocks) {
  const Context ctx(MPI_COMM_WORLD);
  testing::SharedTempDir dir(ctx);
  const std::string path = dir.file("rec.h5");
  write_valid(ctx, path, 11);
  EXPECT_FALSE(std::filesystem::exists(path + ".partial"));
  const Recording rec = Recording::open(ctx, path);
  EXPECT_EQ(rec.info().presentations, 8);
  EXPECT_EQ(rec.info().neurons, 11);
  EXPECT_EQ(rec.info().images, 3);
  EXPECT_EQ(rec.info().spont_timepoints, 5);
  EXPECT_TRUE(rec.info().has_classes);
  EXPECT_TRUE(rec.info().has_positions);
  const Range mine = BlockLayout(11, ctx.size()).range(ctx.rank());
  ValueCounts counts;
  const Matrix m = rec.read_responses(ctx, mine, &counts);
  ASSERT_EQ(m.rows(), mine.size());
  ASSERT_EQ(m.cols(), 8);
  for (std::int64_t p = 0; p < 8; ++p)
    for (std::int64_t i = 0; i < mine.size(); ++i) EXPECT_EQ(m(i, p), resp_value(p, mine.begin + i));
  EXPECT_EQ(counts.nan, 0);
  EXPECT_EQ(counts.inf, 0);
}

// Enough rows that chunks are 64 columns wide, so rank blocks (200 columns over 1-3 ranks) start and end
// inside chunks; written neuron-major by half the columns' owners and row-major by the rest.
TEST(Recording, WriteColumnsPacksBothOrdersIntoChunks) {
  const Context ctx(MPI_COMM_WORLD);
  testing::SharedTempDir dir(ctx);
  const std::string path = dir.file("orders.h5");
  const std::int64_t rows = 4100, n = 200;
  ASSERT_EQ(neuron_block_chunk(rows, n), (std::vector<std::int64_t>{rows, 64}));
  RecordingLayout layout;
  layout.presentations = rows;
  layout.neurons = n;
  layout.images = 1;
  {
    RecordingWriter w(ctx, path, layout);
    const Range mine = BlockLayout(n, ctx.size()).range(ctx.rank());
    const BlockOrder order = ctx.rank() % 2 == 0 ? BlockOrder::neuron_major : BlockOrder::row_major;
    std::vector<float> block(static_cast<std::size_t>(rows * mine.size()));
    for (std::int64_t r = 0; r < rows; ++r)
      for (std::int64_t j = 0; j < mine.size(); ++j) {
        const std::size_t at = static_cast<std::size_t>(order == BlockOrder::row_major ? r * mine.size() + j : j * rows + r);
        block[at] = resp_value(r, mine.begin + j);
      }
    w.write_columns("/responses", mine, block, order);
    RecordingMetadata meta;
    meta.stimulus_id.assign(static_cast<std::size_t>(rows), 0);
    w.finish(meta);
  }
  if (ctx.root()) {
    h5::File f = h5::File::open(path, h5::Access::read_only, ExitCode::internal);
    const std::vector<float> all = h5::read_all<float>(f, "/responses");
    ASSERT_EQ(all.size(), static_cast<std::size_t>(rows * n));
    std::int64_t wrong = 0;
    for (std::int64_t r = 0; r < rows; ++r)
      for (std::int64_t j = 0; j < n; ++j) wrong += all[static_cast<std::size_t>(r * n + j)] != resp_value(r, j);
    EXPECT_EQ(wrong, 0);
  }
}

TEST(Recording, CountsNanAndInfOverAllRanks) {
  const Context ctx(MPI_COMM_WORLD);
  testing::SharedTempDir dir(ctx);
  const std::string path = dir.file("nan.h5");
  write_valid(ctx, path, 7, true);
  const Recording rec = Recording::open(ctx, path);
  ValueCounts counts;
  rec.read_responses(ctx, BlockLayout(7, ctx.size()).range(ctx.rank()), &counts);
  EXPECT_EQ(counts.nan, 1);
  EXPECT_EQ(counts.inf, 1);
}

// Rank 0 damages a valid file with the serial HDF5 API; every rank must then get the same InputError.
void expect_rejected(const Context& ctx, const std::string& path, const std::function<void(h5::File&)>& damage,
                     const std::vector<std::string>& needles) {
  write_valid(ctx, path, 6);
  if (ctx.root() && damage) {
    h5::File f = h5::File::open(path, h5::Access::read_write, ExitCode::internal);
    damage(f);
    f.close();
  }
  ctx.barrier();
  try {
    Recording::open(ctx, path);
    ADD_FAILURE() << "accepted a bad recording; expected: " << needles.front();
  } catch (const InputError& e) {
    EXPECT_TRUE(e.collective());
    const std::string what = e.what();
    EXPECT_NE(what.find(path), std::string::npos) << what;
    for (const auto& n : needles) EXPECT_NE(what.find(n), std::string::npos) << "missing '" << n << "' in: " << what;
  }
}

TEST(Recording, ValidationNamesFileDatasetExpectedAndFound) {
  const Context ctx(MPI_COMM_WORLD);
  testing::SharedTempDir dir(ctx);
  expect_rejected(ctx, dir.file("a.h5"), [](h5::File& f) { h5::remove(f, "/responses"); },
                  {"/responses", "missing"});
  expect_rejected(ctx, dir.file("b.h5"), [](h5::File& f) {
    h5::remove(f, "/responses");
    std::vector<std::int32_t> v(48, 1);
    h5::write_all<std::int32_t>(f, "/responses", {8, 6}, v);
  }, {"/responses", "expected float32", "int32 [8 x 6]"});
  expect_rejected(ctx, dir.file("c.h5"), [](h5::File& f) {
    h5::remove(f, "/stimulus_id");
    std::vector<std::int32_t> v(7, 0);
    h5::write_all<std::int32_t>(f, "/stimulus_id", {7}, v);
  }, {"/stimulus_id", "expected int32 [8]", "int32 [7]"});
  expect_rejected(ctx, dir.file("d.h5"), [](h5::File& f) {
    h5::remove(f, "/stimulus_id");
    std::vector<std::int32_t> v = {0, 1, 5, 2, -2, 0, -1, 1};
    h5::write_all<std::int32_t>(f, "/stimulus_id", {8}, v);
  }, {"/stimulus_id", "2 ids outside [-1, 3)", "presentation 2: 5"});
  expect_rejected(ctx, dir.file("e.h5"), [](h5::File& f) {
    h5::remove(f, "/spontaneous");
    std::vector<float> v(10, 0);
    h5::write_all<float>(f, "/spontaneous", {5, 2}, v);
    h5::remove(f, "/classes/label");
    std::vector<std::int32_t> l = {0, 1, 7};
    h5::write_all<std::int32_t>(f, "/classes/label", {3}, l);
  }, {"2 problems", "/spontaneous: expected float32 [timepoints x 6]", "/classes/label: 1 labels outside [0, 2)"});
}

TEST(Recording, RefusesNonHdf5TruncatedAndEmptyFiles) {
  const Context ctx(MPI_COMM_WORLD);
  testing::SharedTempDir dir(ctx);
  const std::string text = dir.file("notes.h5"), cut = dir.file("cut.h5"), empty = dir.file("empty.h5");
  write_valid(ctx, cut, 6);
  if (ctx.root()) {
    std::ofstream(text) << "not an HDF5 file";
    std::filesystem::resize_file(cut, std::filesystem::file_size(cut) / 2);
  }
  // A recording with zero neurons.
  RecordingLayout layout;
  layout.presentations = 4;
  layout.neurons = 0;
  layout.images = 2;
  {
    RecordingWriter w(ctx, empty, layout);
    w.write_columns("/responses", Range{0, 0}, {});
    RecordingMetadata meta;
    meta.stimulus_id = {0, 1, 0, 1};
    w.finish(meta);
  }
  for (const auto& [path, needle] : std::vector<std::pair<std::string, std::string>>{
           {text, "not a readable HDF5 file"}, {cut, "truncated"}, {empty, "has 0 neurons"},
           {dir.file("absent.h5"), "file not found"}}) {
    try {
      Recording::open(ctx, path);
      ADD_FAILURE() << "accepted " << path;
    } catch (const InputError& e) {
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << e.what();
    }
  }
}

}  // namespace
}  // namespace popcode
