#pragma once
// The canonical popcode recording: one HDF5 file per recording session (schema in docs/format.md).
//
// Opening is collective: rank 0 inspects the file (shapes, dtypes, id ranges, attributes) and broadcasts
// a RecordingInfo; every problem found is reported in one error naming the file, the dataset, what was
// expected and what was found (exit code 3). Bulk data are read collectively by neuron block: rank r
// reads all rows of its own neuron columns with one collective hyperslab read (slabs of 256 MiB for
// larger blocks), so no rank ever holds more than its block.
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "partition/block_layout.hpp"
#include "solvers/matrix.hpp"
#include "src/context.hpp"

namespace popcode {

inline constexpr const char* kRecordingFormat = "popcode-recording";
inline constexpr std::int64_t kRecordingFormatVersion = 1;
inline constexpr std::int32_t kGrayScreenId = -1;

// Everything about a recording except its bulk arrays; identical on every rank after Recording::open.
struct RecordingInfo {
  std::string path;
  std::int64_t presentations = 0;
  std::int64_t neurons = 0;
  std::int64_t images = 0;            // number of distinct images (ids 0 .. images-1)
  std::int64_t spont_timepoints = 0;  // 0 when there is no /spontaneous
  std::int64_t image_height = 0, image_width = 0;
  bool has_images = false, has_classes = false, has_orientation = false, has_positions = false;
  bool has_planes = false, has_gad = false, has_truth = false;
  std::vector<std::int32_t> stimulus_id;   // per presentation, kGrayScreenId for gray screens
  std::vector<double> presentation_time;   // per presentation (index order when the file has none)
  std::string source, subject, session, units;
  std::string fingerprint;                 // size and modification time: detects a changed input
};

// NaN and Inf counts found while reading a block (summed over ranks by the reader).
struct ValueCounts {
  std::int64_t nan = 0;
  std::int64_t inf = 0;
};

class Recording {
 public:
  // Collective. Validates and describes the recording; throws InputError (exit 3) on any problem.
  static Recording open(const Context& ctx, const std::string& path);

  const RecordingInfo& info() const { return info_; }

  // Collective. This rank's neuron block of /responses as a (neurons.size() x presentations) Matrix in
  // float64. NaN/Inf are left in place and counted (totals over all ranks).
  Matrix read_responses(const Context& ctx, Range neurons, ValueCounts* counts) const;
  // Collective. Same for /spontaneous (timepoints as columns). Requires spont_timepoints > 0.
  Matrix read_spontaneous(const Context& ctx, Range neurons, ValueCounts* counts) const;
  // Collective. This rank's rows of /neurons/gad_positive (1 = GAD+ interneuron).
  std::vector<std::uint8_t> read_gad(const Context& ctx, Range neurons) const;
  // Collective. /classes/label (one class per image) and /classes/names on every rank; both empty when
  // the recording has no classes.
  std::vector<std::int32_t> read_class_labels(const Context& ctx, std::vector<std::string>* names = nullptr) const;
  // Collective. /orientation (radians, one per presentation) on every rank; empty when the recording has none.
  std::vector<double> read_orientation(const Context& ctx) const;
  // Collective. The images `ids` of /images on every rank, as float32 (ids.size() x height x width,
  // row-major). Requires has_images; every rank reads the dataset (it is replicated by design).
  std::vector<float> read_images(const Context& ctx, std::span<const std::int32_t> ids) const;
  // Collective. Rows `neurons` (global neuron indices, ascending, this rank's own) of a per-neuron dataset
  // with `width` columns (1 for a vector), as float64 row-major. Reads the rows' span in one hyperslab.
  std::vector<double> read_neuron_rows(const Context& ctx, const std::string& dataset, std::span<const std::int64_t> neurons,
                                       std::int64_t width) const;

 private:
  RecordingInfo info_;
};

// Reads rows [0, rows) of columns `columns` of a 2-D float dataset into a (columns x rows) Matrix,
// collectively, in slabs of rows so the float staging buffer stays small. Counts NaN/Inf locally.
Matrix read_column_block(const Context& ctx, const std::string& path, const std::string& dataset, std::int64_t rows,
                         Range columns, ValueCounts* local_counts);

}  // namespace popcode
