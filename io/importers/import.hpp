#pragma once
// `popcode import` and `popcode inspect`: turning the files neuroscientists have into popcode recordings.
//
// Formats (docs/import.md): Stringer et al. 2019 MAT files (v5 and v7.3, through matio), NumPy .npy / .npz
// and numpy's pickled dict-of-arrays .npy files (native readers in io/npy, io/npz, io/pickle), Sensorium /
// Lurz folders of per-trial .npy files, and NWB 2.x two-photon files (HDF5 C API).
//
// Flow, the same for every format:
//  1. rank 0 describes the source (`Importer::describe`): shapes, dtypes, which variable becomes what, all
//     small arrays (stimulus ids, positions, labels...), and how the two bulk matrices (responses,
//     spontaneous) are to be read. Every problem is an InputError naming the file, the variable and the
//     value; the outcome is agreed by all ranks and the description broadcast.
//  2. the bulk matrices are read by neuron blocks: each rank reads its own columns straight from the file
//     where the format allows (uncompressed .npy / stored .npz members by offset arithmetic, HDF5/NWB by
//     hyperslab, Sensorium trial files by rows then redistributed); compressed formats (MAT v5, deflated
//     .npz members) are read whole by rank 0 and scattered, which needs one copy of the matrix on rank 0.
//  3. RecordingWriter writes the canonical file atomically (`<out>.partial`, renamed at the end), so a failed
//     import leaves nothing that looks like a recording.
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "io/recording_writer.hpp"
#include "partition/block_layout.hpp"
#include "src/bulk_buffer.hpp"
#include "src/context.hpp"

namespace popcode {

struct ImportOptions {
  std::string format = "auto";   // auto | mat | npy | npz | sensorium | nwb
  std::string images;            // MAT: images_natimg2800_all.mat (imgs: height x width x images)
  std::string classes;           // MAT: stimuli_class_assignment*.mat
  std::string responses;         // variable holding the responses (overrides the format's default)
  std::string stimulus;          // variable holding the stimulus of each presentation
  std::string neurons_axis = "auto";  // plain arrays: "0" (neurons x presentations), "1", or auto
  std::string gray = "max";      // MAT istim: "max" (largest id is the gray screen, as in Stringer) or "none"
  std::string nwb_series;        // NWB: path of the RoiResponseSeries (default: the first under processing/ophys)
  std::string nwb_table;         // NWB: path of the presentation table (default: first under intervals/)
};

// How one (rows x neurons) bulk matrix is read.
struct BulkInfo {
  enum Kind : std::int32_t {
    none = 0,
    root_scatter = 1,   // rank 0 holds the whole matrix (importer-specific) and scatters neuron blocks
    raw_file = 2,       // numbers at an offset in a file (.npy or stored .npz member), read with pread
    hdf5 = 3,           // a 2-D HDF5 dataset, read by collective hyperslabs
    row_files = 4,      // one .npy file per row (Sensorium trials): rows read by ranks, then redistributed
    hdf5_binned = 5,    // NWB: a (time x ROIs) series averaged over presentation windows
  };
  std::int32_t kind = none;
  std::int64_t rows = 0, neurons = 0;
  std::string file;            // raw_file / hdf5 / hdf5_binned: the file; row_files: the folder
  std::string dataset;         // hdf5: dataset path; row_files: subfolder (e.g. "data/responses")
  std::string dtype;           // raw_file: npy descr
  std::uint64_t offset = 0;    // raw_file: offset of the first element
  std::int32_t neurons_first = 0;  // stored as neurons x rows (transposed relative to the recording)
  std::int32_t fortran_order = 0;  // raw_file: column-major storage
  std::vector<std::string> row_names;  // row_files: file name of each row
  std::vector<std::int64_t> window_begin, window_end;  // hdf5_binned: sample index range of each presentation
  std::string variable;        // name shown in messages and by inspect
  // raw_file inside a zip (stored .npz member): the member's bytes and CRC-32, checked by all ranks together
  // before the import, because offset reads bypass libzip's own check.
  std::int32_t check_crc = 0;
  std::uint32_t crc = 0;
  std::uint64_t crc_begin = 0, crc_length = 0;
};

// One variable of the source, as `popcode inspect` reports it.
struct SourceVariable {
  std::string name;
  std::vector<std::int64_t> shape;
  std::string dtype;
  std::int64_t nan = -1, inf = -1;  // -1: not counted
  std::string use;                  // what popcode makes of it, or "ignored: <why>"
};

// Everything rank 0 learns about a source; broadcast to every rank.
struct SourceInfo {
  std::string path, format;
  RecordingLayout layout;
  RecordingMetadata meta;
  BulkInfo responses, spontaneous;
  std::vector<double> positions;        // neurons x 3 (row-major) or empty
  std::vector<std::uint8_t> gad;        // per neuron or empty
  std::vector<std::int32_t> tier;       // per presentation or empty (Sensorium)
  std::vector<std::string> tier_names;
  std::vector<std::int64_t> image_source_id;  // per image: its id in the source (istim, frame_image_id)
  std::vector<SourceVariable> variables;
  std::vector<std::string> notes;       // decisions worth telling the user (e.g. "2,801 = gray screen")
};

class Importer {
 public:
  virtual ~Importer() = default;
  // Rank 0 only. Throws InputError/UsageError.
  virtual SourceInfo describe() = 0;
  // Rank 0 only, for BulkInfo::root_scatter: the whole matrix, stored neurons-major (neuron j's rows
  // contiguous at [j*rows, (j+1)*rows)). Called after describe(); may release its memory afterwards.
  virtual std::vector<float> load_whole(const BulkInfo& bulk);
  // Rank 0 only: the images (images x height x width, row-major), when layout.image_height > 0.
  virtual std::vector<float> load_images();
};

// The importer for `path` (format detected from the name and magic bytes unless options.format says).
std::unique_ptr<Importer> make_importer(const std::string& path, const ImportOptions& options);
// "mat-v5", "mat-v7.3", "npy", "npz", "sensorium", "nwb", "hdf5" (a popcode recording or other HDF5), or "".
std::string detect_format(const std::string& path);

// Collective: describe on rank 0, agree on errors, broadcast.
SourceInfo describe_source(const Context& ctx, Importer& importer, const std::string& path);

// A rank's neuron block of a bulk array in the order the source stores it: RecordingWriter::write_columns
// packs either order into the file's chunks, so no reader transposes.
struct BulkBlock {
  FloatBlock values;
  BlockOrder order = BlockOrder::row_major;
};

// Collective: this rank's neuron block `neurons` of `bulk` (rows x neurons, in the source's order).
BulkBlock read_bulk_block(const Context& ctx, Importer& importer, const SourceInfo& info, const BulkInfo& bulk,
                          Range neurons);

struct ImportSummary {
  std::int64_t presentations = 0, neurons = 0, images = 0, spont = 0;
  std::int64_t nan = 0, inf = 0;
  double seconds = 0, bytes = 0;
};

// Collective. Writes the recording `out` from `path`. Throws (exit 3) on bad input, leaving no `out`.
ImportSummary import_recording(const Context& ctx, const std::string& path, const std::string& out,
                               const ImportOptions& options);

// Collective (all ranks read; rank 0 prints). Describes a file as text or JSON, counting NaN/Inf in the bulk
// arrays. Returns the text.
std::string inspect_source(const Context& ctx, const std::string& path, const ImportOptions& options, bool json);

}  // namespace popcode
