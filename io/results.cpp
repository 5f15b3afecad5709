#include "io/results.hpp"

#include <fmt/chrono.h>
#include <fmt/format.h>

#include <chrono>
#include <filesystem>

#include "src/log.hpp"
#include "src/pack.hpp"
#include "src/timing.hpp"
#include "src/version.hpp"

namespace popcode {
namespace {

// Rank 0 reads the table of complete stages: name -> identity. Sets `foreign` when the file is readable
// HDF5 but was not written by popcode as a results file (no popcode_status attribute).
std::map<std::string, std::string> read_complete_stages(const std::string& path, bool* foreign) {
  std::map<std::string, std::string> out;
  h5::File f = h5::File::open(path, h5::Access::read_only, ExitCode::usage);
  *foreign = !h5::has_attribute(f, "/", "popcode_status");
  if (*foreign) return out;
  for (const std::string& name : h5::list(f, "/")) {
    const std::string g = "/" + name;
    if (H5Oexists_by_name(f.id(), g.c_str(), H5P_DEFAULT) <= 0) continue;
    if (!h5::has_attribute(f, g, "complete") || !h5::has_attribute(f, g, "identity")) continue;
    if (h5::read_int_attribute(f, g, "complete") != 1) continue;
    out[name] = h5::read_string_attribute(f, g, "identity");
  }
  return out;
}

}  // namespace

ResultsFile ResultsFile::open(const Context& ctx, const std::string& path, bool fresh) {
  ResultsFile r;
  r.path_ = path;
  std::string problem, table;
  if (ctx.root()) {
    std::error_code ec;
    const auto parent = std::filesystem::path(path).parent_path();
    if (!parent.empty() && !std::filesystem::is_directory(parent, ec)) {
      problem = fmt::format("results file {}: directory {} does not exist", path, parent.string());
    } else if (std::filesystem::exists(path, ec)) {
      if (fresh) {
        std::filesystem::remove(path, ec);
      } else {
        try {
          Packer pk;
          bool foreign = false;
          const auto stages = read_complete_stages(path, &foreign);
          if (foreign) {
            problem = fmt::format("{} exists and is not a popcode results file (no popcode_status attribute); "
                                  "choose another results file, or --force to replace it", path);
          }
          std::vector<std::string> flat;
          for (const auto& [k, v] : stages) {
            flat.push_back(k);
            flat.push_back(v);
          }
          pk.put(flat);
          table = pk.bytes();
        } catch (const Error& e) {
          const std::string aside = fmt::format("{}.unreadable-{:%Y%m%dT%H%M%S}", path, fmt::gmtime(std::time(nullptr)));
          std::filesystem::rename(path, aside, ec);
          log::warn_once("{} could not be read ({}); moved it to {} and starting a new results file", path, e.what(), aside);
        }
      }
    }
  }
  ctx.agree(!problem.empty(), problem, ExitCode::usage);
  table = ctx.broadcast(table);
  if (!table.empty()) {
    Unpacker u(table);
    std::vector<std::string> flat;
    u.get(flat);
    for (std::size_t i = 0; i + 1 < flat.size(); i += 2) r.complete_[flat[i]] = flat[i + 1];
  }
  bool exists = ctx.root() && std::filesystem::exists(path);
  exists = ctx.any(exists);
  if (!exists) {
    h5::File f = h5::File::create_parallel(path, ctx.comm());
    f.close();
  }
  return r;
}

std::string ResultsFile::complete_identity(const std::string& stage) const {
  const auto it = complete_.find(stage);
  return it == complete_.end() ? std::string() : it->second;
}

void ResultsFile::set_status(const Context& ctx, const std::string& status) const {
  h5::File f = h5::File::open_parallel(path_, h5::Access::read_write, ctx.comm(), ExitCode::internal);
  h5::write_attribute(f, "/", "popcode_status", status);
  h5::write_attribute(f, "/", "popcode_version", fmt::format("{} ({})", version_string(), git_revision()));
  f.close();
}

StageWriter ResultsFile::begin_stage(const Context& ctx, const std::string& stage) {
  complete_.erase(stage);
  return StageWriter(ctx, path_, "/" + stage);
}

void ResultsFile::copy_group(const Context& ctx, const std::string& source, const std::string& group) const {
  std::string error;
  if (ctx.root()) {
    try {
      h5::File src = h5::File::open(source, h5::Access::read_only, ExitCode::bad_input);
      h5::File dst = h5::File::open(path_, h5::Access::read_write, ExitCode::internal);
      h5::remove(dst, group);
      if (H5Ocopy(src.id(), group.c_str(), dst.id(), group.c_str(), H5P_DEFAULT, H5P_DEFAULT) < 0) {
        h5::fail(dst, group, fmt::format("copy from {}", source));
      }
      dst.close();
      src.close();
    } catch (const std::exception& e) {
      error = e.what();
    }
  }
  ctx.agree(!error.empty(), error, ExitCode::internal);
}

StageWriter::StageWriter(const Context& ctx, const std::string& path, std::string group) : group_(std::move(group)) {
  file_ = h5::File::open_parallel(path, h5::Access::read_write, ctx.comm(), ExitCode::internal);
  h5::remove(file_, group_);
  h5::create_group(file_, group_);
}

StageWriter::~StageWriter() {
  if (committed_ || !file_.is_open()) return;
  try {
    file_.close();  // leaves the group without `complete`: it reads as absent
  } catch (const std::exception&) {
  }
}

void StageWriter::describe(const std::string& name, const std::string& description, const std::string& units) {
  h5::write_attribute(file_, path_of(name), "description", description);
  if (!units.empty()) h5::write_attribute(file_, path_of(name), "units", units);
}

void StageWriter::replicated(const std::string& name, std::span<const double> values, const std::string& description,
                             std::vector<std::int64_t> dims, const std::string& units) {
  if (dims.empty()) dims = {static_cast<std::int64_t>(values.size())};
  h5::write_all<double>(file_, path_of(name), dims, values);
  describe(name, description, units);
}

void StageWriter::replicated(const std::string& name, std::span<const std::int64_t> values,
                             const std::string& description, std::vector<std::int64_t> dims) {
  if (dims.empty()) dims = {static_cast<std::int64_t>(values.size())};
  h5::write_all<std::int64_t>(file_, path_of(name), dims, values);
  describe(name, description, "");
}

void StageWriter::replicated(const std::string& name, std::span<const std::int32_t> values,
                             const std::string& description) {
  h5::write_all<std::int32_t>(file_, path_of(name), {static_cast<std::int64_t>(values.size())}, values);
  describe(name, description, "");
}

void StageWriter::replicated(const std::string& name, std::span<const std::uint8_t> values,
                             const std::string& description, std::vector<std::int64_t> dims) {
  if (dims.empty()) dims = {static_cast<std::int64_t>(values.size())};
  h5::write_all<std::uint8_t>(file_, path_of(name), dims, values);
  describe(name, description, "");
}

void StageWriter::scalar(const std::string& name, double value, const std::string& description, const std::string& units) {
  h5::write_scalar(file_, path_of(name), value);
  describe(name, description, units);
}

void StageWriter::scalar(const std::string& name, std::int64_t value, const std::string& description) {
  h5::write_scalar(file_, path_of(name), value);
  describe(name, description, "");
}

template <typename T>
void StageWriter::distributed(const std::string& name, std::int64_t global_rows, std::int64_t first_row,
                              std::int64_t rows, std::int64_t row_width, std::span<const T> values,
                              const std::string& description) {
  const std::vector<std::int64_t> dims = row_width == 1 ? std::vector<std::int64_t>{global_rows}
                                                        : std::vector<std::int64_t>{global_rows, row_width};
  h5::create_dataset<T>(file_, path_of(name), dims);
  std::vector<std::int64_t> offset = {first_row}, count = {rows};
  if (row_width != 1) {
    offset.push_back(0);
    count.push_back(row_width);
  }
  if (rows == 0) std::fill(count.begin(), count.end(), 0);
  h5::write_block<T>(file_, path_of(name), offset, count, values);
  describe(name, description, "");
}

template void StageWriter::distributed<double>(const std::string&, std::int64_t, std::int64_t, std::int64_t, std::int64_t,
                                               std::span<const double>, const std::string&);
template void StageWriter::distributed<std::int64_t>(const std::string&, std::int64_t, std::int64_t, std::int64_t,
                                                     std::int64_t, std::span<const std::int64_t>, const std::string&);

void StageWriter::commit(const std::string& identity, const std::string& options) {
  h5::write_attribute(file_, group_, "identity", identity);
  h5::write_attribute(file_, group_, "options", options);
  file_.flush();  // everything else reaches the disk before the flag that vouches for it
  h5::write_attribute(file_, group_, "complete", std::int64_t{1});
  file_.close();
  committed_ = true;
}

}  // namespace popcode
