#pragma once
// Writes a canonical popcode recording (docs/format.md) in parallel, atomically.
//
// The file is built as `<path>.partial`: bulk arrays are written collectively by blocks (each rank its own
// neuron columns or image rows), then the parallel file is closed and rank 0 adds the small replicated
// datasets and string data in a short serial session, and renames the file into place. A writer that is
// destroyed before finish() (an error, a signal) removes the partial file, so an interrupted write never
// leaves anything that looks like a recording.
#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <vector>

#include "io/h5.hpp"
#include "partition/block_layout.hpp"
#include "src/context.hpp"

namespace popcode {

// Order of a (rows x columns) block in memory: row-major, or neuron-major (column j's rows contiguous).
enum class BlockOrder { row_major, neuron_major };

struct RecordingLayout {
  std::int64_t presentations = 0;
  std::int64_t neurons = 0;
  std::int64_t images = 0;
  std::int64_t spont_timepoints = 0;        // 0: no /spontaneous
  std::int64_t image_height = 0, image_width = 0;  // both > 0: /images is stored
  bool positions = false;                   // /neurons/position and /neurons/plane
  bool gad = false;                         // /neurons/gad_positive
  std::string source, subject, session, units;
};

// Small replicated arrays, written by rank 0 at finish() (only rank 0's values are used).
struct RecordingMetadata {
  std::vector<std::int32_t> stimulus_id;      // required, one per presentation
  std::vector<double> presentation_time;      // optional
  std::vector<double> orientation;            // optional
  std::vector<std::int32_t> class_label;      // optional, one per image, with class_names
  std::vector<std::string> class_names;
};

// Chunk shape used for (rows x neurons) float32 datasets: all rows of a group of neighbouring neurons,
// about 1 MiB per chunk, so a neuron-block hyperslab touches whole contiguous chunks.
std::vector<std::int64_t> neuron_block_chunk(std::int64_t rows, std::int64_t neurons);

class RecordingWriter {
 public:
  // Collective.
  RecordingWriter(const Context& ctx, std::string path, RecordingLayout layout);
  ~RecordingWriter();
  RecordingWriter(const RecordingWriter&) = delete;
  RecordingWriter& operator=(const RecordingWriter&) = delete;

  const RecordingLayout& layout() const { return layout_; }
  // The open parallel file, for collective writes of extra datasets (e.g. /truth).
  const h5::File& file() const { return file_; }

  // Collective. Writes columns `columns` of a 2-D (rows x columns) float32 dataset from a block of
  // rows x columns.size() values, row-major (the float image of a Matrix with one row per column of the
  // dataset) or neuron-major (each column's rows contiguous). Empty ranges are fine.
  void write_columns(const std::string& dataset, Range columns, std::span<const float> block,
                     BlockOrder order = BlockOrder::row_major);
  // Collective. Writes rows `rows` of a dataset from a row-major block covering whole rows.
  template <typename T>
  void write_rows(const std::string& dataset, Range rows, std::span<const T> block);

  // Collective. Completes the file (see the header comment). The file's data reach the disk (fsync) before
  // the rename, and the rename reaches it before finish returns: after a crash of the node the path holds
  // the whole recording or nothing. `extra` runs on rank 0 only, in the serial
  // session, for small datasets such as the planted truth's scalars.
  void finish(const RecordingMetadata& meta, const std::function<void(const h5::File&)>& extra = {});

 private:
  const Context& ctx_;
  std::string path_;
  std::string partial_;
  RecordingLayout layout_;
  h5::File file_;
  int writeback_fd_ = -1;           // this rank's descriptor on the partial file, to start writeback early
  std::int64_t unsubmitted_ = 0;    // bytes this rank wrote since it last started writeback
  bool finished_ = false;
};

}  // namespace popcode
