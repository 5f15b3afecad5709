#pragma once
// The results file of a job: one HDF5 group per stage, written atomically, plus /provenance and /truth.
//
// Layout (docs/results.md): the root attribute `popcode_status` is "running" while a job writes, then
// "complete" or "failed: <message>"; a killed job leaves "running", never "complete". Each stage group
// carries `complete = 1` (written last, after all its datasets), the stage's `options` and an `identity`
// (a digest of its options and of everything upstream); a group without `complete` is treated as absent.
// The file is open only while a stage writes, never while it computes, so a job killed mid-computation
// cannot damage what earlier stages wrote.
//
// Every dataset has a `description` attribute (and `units` where it has units), for h5py users.
#include <cstdint>
#include <map>
#include <span>
#include <string>
#include <vector>

#include "io/h5.hpp"
#include "partition/block_layout.hpp"
#include "src/context.hpp"

namespace popcode {

class StageWriter;

class ResultsFile {
 public:
  ResultsFile() = default;
  // Collective. Opens `path` for a job, creating it if missing. `fresh` starts a new file (--force). An
  // existing file that HDF5 cannot open is moved aside to `<path>.unreadable-<time>` with a warning.
  static ResultsFile open(const Context& ctx, const std::string& path, bool fresh);

  const std::string& path() const { return path_; }
  // The identity recorded by a complete stage group, or "" when the group is missing or incomplete.
  std::string complete_identity(const std::string& stage) const;
  // Collective. Sets the root attribute popcode_status (and popcode_version).
  void set_status(const Context& ctx, const std::string& status) const;
  // Collective. Starts writing group `/stage`, removing any previous group of that name.
  StageWriter begin_stage(const Context& ctx, const std::string& stage);
  // Collective. Copies group `group` of the HDF5 file `source` into this file (replacing it); rank 0 copies.
  void copy_group(const Context& ctx, const std::string& source, const std::string& group) const;

 private:
  std::string path_;
  std::map<std::string, std::string> complete_;
};

class StageWriter {
 public:
  StageWriter(const Context& ctx, const std::string& path, std::string group);
  ~StageWriter();
  StageWriter(StageWriter&&) = default;
  StageWriter(const StageWriter&) = delete;
  StageWriter& operator=(const StageWriter&) = delete;

  const h5::File& file() const { return file_; }
  const std::string& group() const { return group_; }
  std::string path_of(const std::string& name) const { return group_ + "/" + name; }

  // Collective; rank 0's values are written. `dims` empty means a 1-D dataset of values.size().
  void replicated(const std::string& name, std::span<const double> values, const std::string& description,
                  std::vector<std::int64_t> dims = {}, const std::string& units = "");
  void replicated(const std::string& name, std::span<const std::int64_t> values, const std::string& description,
                  std::vector<std::int64_t> dims = {});
  void replicated(const std::string& name, std::span<const std::int32_t> values, const std::string& description);
  void replicated(const std::string& name, std::span<const std::uint8_t> values, const std::string& description,
                  std::vector<std::int64_t> dims = {});
  void scalar(const std::string& name, double value, const std::string& description, const std::string& units = "");
  void scalar(const std::string& name, std::int64_t value, const std::string& description);
  // Collective: a dataset of `global_rows` x row_width (1-D when row_width == 1) whose rows are split over
  // ranks; this rank writes rows [first_row, first_row + rows) from `values` (row-major).
  template <typename T>
  void distributed(const std::string& name, std::int64_t global_rows, std::int64_t first_row, std::int64_t rows,
                   std::int64_t row_width, std::span<const T> values, const std::string& description);
  template <typename T>
  void attribute(const std::string& name, const T& value) {
    h5::write_attribute(file_, group_, name, value);
  }
  // Collective. Records the identity and options and marks the group complete (last), then closes.
  void commit(const std::string& identity, const std::string& options);

 private:
  void describe(const std::string& name, const std::string& description, const std::string& units);
  h5::File file_;
  std::string group_;
  bool committed_ = false;
};

}  // namespace popcode
