#include "io/recording_writer.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>

#include "io/recording.hpp"
#include "src/log.hpp"
#include "src/version.hpp"

namespace popcode {

std::vector<std::int64_t> neuron_block_chunk(std::int64_t rows, std::int64_t neurons) {
  const std::int64_t chunk_rows = std::clamp<std::int64_t>(rows, 1, 8192);
  std::int64_t chunk_cols = std::max<std::int64_t>(64, (1 << 20) / (4 * chunk_rows));
  chunk_cols = std::clamp<std::int64_t>(chunk_cols, 1, std::max<std::int64_t>(neurons, 1));
  return {chunk_rows, chunk_cols};
}

RecordingWriter::RecordingWriter(const Context& ctx, std::string path, RecordingLayout layout)
    : ctx_(ctx), path_(std::move(path)), partial_(path_ + ".partial"), layout_(std::move(layout)) {
  const auto& L = layout_;
  file_ = h5::File::create_parallel(partial_, ctx_.comm());
  h5::create_dataset<float>(file_, "/responses", {L.presentations, L.neurons}, neuron_block_chunk(L.presentations, L.neurons));
  if (L.spont_timepoints > 0) {
    h5::create_dataset<float>(file_, "/spontaneous", {L.spont_timepoints, L.neurons},
                              neuron_block_chunk(L.spont_timepoints, L.neurons));
  }
  if (L.image_height > 0 && L.image_width > 0) {
    h5::create_dataset<float>(file_, "/images", {L.images, L.image_height, L.image_width},
                              {1, L.image_height, L.image_width});
  }
  if (L.positions) {
    h5::create_dataset<double>(file_, "/neurons/position", {L.neurons, 3});
    h5::create_dataset<std::int32_t>(file_, "/neurons/plane", {L.neurons});
  }
  if (L.gad) h5::create_dataset<std::uint8_t>(file_, "/neurons/gad_positive", {L.neurons});
}

RecordingWriter::~RecordingWriter() {
  if (finished_) return;
  // Interrupted: close without the completing steps and remove the partial file. Reached on all ranks
  // together when the error was agreed; a rank-local failure aborts the job instead.
  try {
    file_.close();
  } catch (const std::exception&) {
  }
  if (ctx_.root()) std::remove(partial_.c_str());
}

void RecordingWriter::write_columns(const std::string& dataset, Range columns, std::span<const float> block) {
  const auto shape = h5::shape_of(file_, dataset);
  const std::int64_t rows = shape.dims.at(0);
  if (static_cast<std::int64_t>(block.size()) != rows * columns.size()) {
    throw InternalError(fmt::format("{}: {}: block of {} values for {} rows x {} columns", partial_, dataset,
                                    block.size(), rows, columns.size()));
  }
  h5::write_block<float>(file_, dataset, {0, columns.begin}, {columns.empty() ? 0 : rows, columns.size()}, block);
}

template <typename T>
void RecordingWriter::write_rows(const std::string& dataset, Range rows, std::span<const T> block) {
  const auto shape = h5::shape_of(file_, dataset);
  std::vector<std::int64_t> offset(shape.dims.size(), 0), count = shape.dims;
  std::int64_t row_size = 1;
  for (std::size_t d = 1; d < shape.dims.size(); ++d) row_size *= shape.dims[d];
  if (static_cast<std::int64_t>(block.size()) != rows.size() * row_size) {
    throw InternalError(fmt::format("{}: {}: block of {} values for {} rows of {}", partial_, dataset, block.size(),
                                    rows.size(), row_size));
  }
  offset[0] = rows.begin;
  count[0] = rows.size();
  if (rows.empty()) std::fill(count.begin(), count.end(), 0);
  h5::write_block<T>(file_, dataset, offset, count, block);
}

template void RecordingWriter::write_rows<float>(const std::string&, Range, std::span<const float>);
template void RecordingWriter::write_rows<double>(const std::string&, Range, std::span<const double>);
template void RecordingWriter::write_rows<std::int32_t>(const std::string&, Range, std::span<const std::int32_t>);
template void RecordingWriter::write_rows<std::uint8_t>(const std::string&, Range, std::span<const std::uint8_t>);

void RecordingWriter::finish(const RecordingMetadata& meta, const std::function<void(const h5::File&)>& extra) {
  file_.close();
  std::string error;
  if (ctx_.root()) {
    try {
      const auto& L = layout_;
      h5::File f = h5::File::open(partial_, h5::Access::read_write, ExitCode::internal);
      if (static_cast<std::int64_t>(meta.stimulus_id.size()) != L.presentations) {
        throw InternalError(fmt::format("{}: {} stimulus ids for {} presentations", partial_, meta.stimulus_id.size(), L.presentations));
      }
      h5::write_all<std::int32_t>(f, "/stimulus_id", {L.presentations}, meta.stimulus_id);
      if (!meta.presentation_time.empty()) h5::write_all<double>(f, "/presentation_time", {L.presentations}, meta.presentation_time);
      if (!meta.orientation.empty()) h5::write_all<double>(f, "/orientation", {L.presentations}, meta.orientation);
      if (!meta.class_label.empty()) {
        h5::write_all<std::int32_t>(f, "/classes/label", {L.images}, meta.class_label);
        h5::write_strings(f, "/classes/names", meta.class_names);
      }
      h5::write_attribute(f, "/", "format", kRecordingFormat);
      h5::write_attribute(f, "/", "format_version", kRecordingFormatVersion);
      h5::write_attribute(f, "/", "n_images", L.images);
      h5::write_attribute(f, "/", "source", L.source);
      h5::write_attribute(f, "/", "subject", L.subject);
      h5::write_attribute(f, "/", "session", L.session);
      h5::write_attribute(f, "/", "units", L.units);
      h5::write_attribute(f, "/", "created_by", fmt::format("popcode {} ({})", version_string(), git_revision()));
      if (extra) extra(f);
      f.close();
      std::error_code ec;
      std::filesystem::rename(partial_, path_, ec);
      if (ec) throw UsageError(fmt::format("cannot move {} to {}: {}", partial_, path_, ec.message()));
    } catch (const std::exception& e) {
      error = e.what();
      std::remove(partial_.c_str());
    }
  }
  finished_ = true;
  ctx_.agree(!error.empty(), error, ExitCode::internal);
}

}  // namespace popcode
