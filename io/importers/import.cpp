// The format-independent half of `popcode import` / `popcode inspect` (see import.hpp for the flow).
#include "io/importers/import.hpp"

#include <fcntl.h>
#include <zlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fmt/format.h>

#include <algorithm>
#include <bit>
#include <chrono>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>

#include "io/h5.hpp"
#include "io/importers/formats.hpp"
#include "io/npy.hpp"
#include "io/recording.hpp"
#include "partition/redistribute.hpp"
#include "src/log.hpp"
#include "src/pack.hpp"
#include "src/progress.hpp"

namespace popcode {

std::string detect_format(const std::string& path) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (fs::is_directory(path, ec)) {
    return fs::is_directory(fs::path(path) / "meta", ec) && fs::is_directory(fs::path(path) / "data", ec) ? "sensorium" : "";
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) return "";
  char head[128] = {};
  in.read(head, sizeof head);
  const std::size_t got = static_cast<std::size_t>(in.gcount());
  const auto starts = [&](const char* magic, std::size_t n) { return got >= n && std::memcmp(head, magic, n) == 0; };
  if (starts("\x93NUMPY", 6)) return "npy";
  if (starts("PK\x03\x04", 4) || starts("PK\x05\x06", 4)) return "npz";
  if (starts("\x89HDF\r\n\x1a\n", 8)) return "hdf5";
  if (starts("MATLAB 7.3 MAT-file", 19)) return "mat-v7.3";
  if (starts("MATLAB 5.0 MAT-file", 19) || (got >= 4 && std::memcmp(head, "MATL", 4) == 0)) return "mat-v5";
  return "";
}

std::unique_ptr<Importer> make_importer(const std::string& path, const ImportOptions& options) {
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) throw UsageError(fmt::format("{}: no such file or folder", path));
  std::string format = options.format;
  if (format == "auto") {
    const std::string found = detect_format(path);
    if (found.empty()) {
      throw InputError(fmt::format("{}: format not recognised (not a MAT, .npy, .npz or HDF5/NWB file, nor a Sensorium "
                                   "folder with data/ and meta/); name it with --format if it is one of these",
                                   path));
    }
    format = found.rfind("mat", 0) == 0 ? "mat" : found == "hdf5" ? "nwb" : found;
  }
  if (format == "mat") return make_mat_importer(path, options);
  if (format == "npy" || format == "npz") return make_numpy_importer(path, options);
  if (format == "sensorium") return make_sensorium_importer(path, options);
  if (format == "nwb") return make_nwb_importer(path, options);
  throw UsageError(fmt::format("--format {}: expected one of auto, mat, npy, npz, sensorium, nwb", format));
}

namespace {

template <typename Archive, typename B>
void transfer_bulk(Archive& a, B& b) {
  a.io(b.kind);
  a.io(b.rows);
  a.io(b.neurons);
  a.io(b.file);
  a.io(b.dataset);
  a.io(b.dtype);
  a.io(b.offset);
  a.io(b.neurons_first);
  a.io(b.fortran_order);
  a.io(b.row_names);
  a.io(b.window_begin);
  a.io(b.window_end);
  a.io(b.variable);
  a.io(b.check_crc);
  a.io(b.crc);
  a.io(b.crc_begin);
  a.io(b.crc_length);
}

// Everything of SourceInfo that the ranks need to read and write (the inspect-only parts stay on rank 0).
template <typename Archive, typename S>
void transfer_info(Archive& a, S& s) {
  a.io(s.path);
  a.io(s.format);
  auto& L = s.layout;
  a.io(L.presentations);
  a.io(L.neurons);
  a.io(L.images);
  a.io(L.spont_timepoints);
  a.io(L.image_height);
  a.io(L.image_width);
  a.io(L.positions);
  a.io(L.gad);
  a.io(L.source);
  a.io(L.subject);
  a.io(L.session);
  a.io(L.units);
  transfer_bulk(a, s.responses);
  transfer_bulk(a, s.spontaneous);
}

class Fd {
 public:
  explicit Fd(const std::string& path) : path_(path), fd_(::open(path.c_str(), O_RDONLY)) {
    if (fd_ < 0) throw InputError(fmt::format("{}: cannot open: {}", path, std::strerror(errno)));
  }
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  void read_at(unsigned char* dst, std::size_t n, std::uint64_t offset) const {
    while (n > 0) {
      const ssize_t got = ::pread(fd_, dst, n, static_cast<off_t>(offset));
      if (got <= 0) {
        throw InputError(fmt::format("{}: read of {} bytes at offset {} failed: {}", path_, n, offset,
                                     got == 0 ? "file is shorter than its header says" : std::strerror(errno)));
      }
      dst += got;
      n -= static_cast<std::size_t>(got);
      offset += static_cast<std::uint64_t>(got);
    }
  }

 private:
  std::string path_;
  int fd_;
};

// Neuron block of a raw (npy) array. Storage is neuron-contiguous when exactly one of "stored neurons x
// rows" and "Fortran order" holds; then the block is one read. Otherwise every row holds a run of the
// block's neurons, read in batches of rows (one read per batch; the gaps are other ranks' neurons).
BulkBlock read_raw_block(const BulkInfo& b, Range neurons) {
  const std::int64_t n = neurons.size(), rows = b.rows;
  const bool neuron_contiguous = (b.neurons_first != 0) != (b.fortran_order != 0);
  BulkBlock block{FloatBlock(static_cast<std::size_t>(n * rows)), neuron_contiguous ? BlockOrder::neuron_major : BlockOrder::row_major};
  FloatBlock& out = block.values;
  if (n == 0 || rows == 0) return block;
  NpyHeader h;
  parse_npy_descr(b.dtype, h, b.file);
  const std::size_t item = static_cast<std::size_t>(h.item_size);
  Fd fd(b.file);
  // Native float32 whose block is one contiguous run (whole rows, or neuron-major storage): read into place.
  const bool native_f4 = h.kind == 'f' && item == 4 && h.big_endian == (std::endian::native == std::endian::big);
  if (native_f4 && (neuron_contiguous || n == b.neurons)) {
    const std::uint64_t first = neuron_contiguous ? static_cast<std::uint64_t>(neurons.begin * rows) * item : 0;
    fd.read_at(reinterpret_cast<unsigned char*>(out.data()), out.size() * item, b.offset + first);
    return block;
  }
  if (neuron_contiguous) {
    std::vector<unsigned char> raw(static_cast<std::size_t>(n * rows) * item);
    fd.read_at(raw.data(), raw.size(), b.offset + static_cast<std::uint64_t>(neurons.begin * rows) * item);
    convert_npy_elements(h, raw.data(), out.size(), out.data());
    return block;
  }
  const std::int64_t batch = std::max<std::int64_t>(1, (16 << 20) / static_cast<std::int64_t>(b.neurons * item));
  std::vector<unsigned char> raw;
  for (std::int64_t r0 = 0; r0 < rows; r0 += batch) {
    const std::int64_t r1 = std::min(rows, r0 + batch);
    const std::uint64_t first = b.offset + static_cast<std::uint64_t>(r0 * b.neurons + neurons.begin) * item;
    const std::uint64_t span = static_cast<std::uint64_t>((r1 - r0 - 1) * b.neurons + n) * item;
    raw.resize(span);
    fd.read_at(raw.data(), span, first);
    for (std::int64_t r = r0; r < r1; ++r) {
      convert_npy_elements(h, raw.data() + static_cast<std::size_t>((r - r0) * b.neurons) * item, static_cast<std::size_t>(n),
                           out.data() + r * n);
    }
  }
  return block;
}

// Neuron block of a 2-D HDF5 dataset, stored (rows x neurons) or (neurons x rows), with one collective
// hyperslab read (the caller bounds the block to 256 MiB).
BulkBlock read_hdf5_block(const Context& ctx, const BulkInfo& b, Range neurons) {
  const std::int64_t n = neurons.size(), rows = b.rows;
  BulkBlock block{FloatBlock(static_cast<std::size_t>(n * rows)), b.neurons_first ? BlockOrder::neuron_major : BlockOrder::row_major};
  FloatBlock& out = block.values;
  h5::File f = h5::File::open_parallel(b.file, h5::Access::read_only, ctx.comm(), ExitCode::bad_input);
  if (b.neurons_first) {
    h5::read_block<float>(f, b.dataset, {neurons.begin, 0}, {n > 0 ? n : 0, n > 0 ? rows : 0}, out);
  } else {
    h5::read_block<float>(f, b.dataset, {0, neurons.begin}, {n > 0 ? rows : 0, n}, out);
  }
  f.close();
  return block;
}

// NWB: average the (time x ROIs) series over each presentation's window [begin, end) of samples.
BulkBlock read_binned_block(const Context& ctx, const BulkInfo& b, Range neurons) {
  const std::int64_t n = neurons.size(), rows = b.rows;
  const std::int64_t samples = b.window_end.empty() ? 0 : *std::max_element(b.window_end.begin(), b.window_end.end());
  BulkInfo series = b;
  series.rows = samples;
  const BulkBlock trace = read_hdf5_block(ctx, series, neurons);
  // Element (sample s, neuron j) of the trace in its stored order.
  const std::int64_t s_stride = trace.order == BlockOrder::row_major ? n : 1, j_stride = trace.order == BlockOrder::row_major ? 1 : samples;
  BulkBlock block{FloatBlock(static_cast<std::size_t>(n * rows)), BlockOrder::row_major};
  FloatBlock& out = block.values;
  std::vector<double> sum(static_cast<std::size_t>(n));
  for (std::int64_t p = 0; p < rows; ++p) {
    const std::int64_t s0 = b.window_begin[static_cast<std::size_t>(p)], s1 = b.window_end[static_cast<std::size_t>(p)];
    std::fill(sum.begin(), sum.end(), 0.0);
    for (std::int64_t s = s0; s < s1; ++s)
      for (std::int64_t j = 0; j < n; ++j) sum[static_cast<std::size_t>(j)] += trace.values[static_cast<std::size_t>(s * s_stride + j * j_stride)];
    for (std::int64_t j = 0; j < n; ++j) {
      out[static_cast<std::size_t>(p * n + j)] = static_cast<float>(sum[static_cast<std::size_t>(j)] / static_cast<double>(s1 - s0));
    }
  }
  return block;
}

// Sensorium: each rank reads its rows (one .npy of N values per trial), then the blocks are exchanged.
// Always the rank's whole neuron block (for_each_block reads row files in one step).
BulkBlock read_row_files(const Context& ctx, const BulkInfo& b, Range neurons) {
  const BlockLayout row_layout(b.rows, ctx.size()), neuron_layout(b.neurons, ctx.size());
  const Range mine = row_layout.range(ctx.rank());
  Matrix local(b.neurons, mine.size());
  std::string error;
  try {
    for (std::int64_t r = mine.begin; r < mine.end; ++r) {
      const std::string file = (std::filesystem::path(b.file) / b.dataset / b.row_names[static_cast<std::size_t>(r)]).string();
      const NpyArray a = read_npy(file);
      if (static_cast<std::int64_t>(a.values.size()) != b.neurons || a.shape.size() != 1) {
        throw InputError(fmt::format("{}: expected {} responses (one per neuron), found shape ({})", file, b.neurons,
                                     shape_text(a.shape)));
      }
      std::copy(a.values.begin(), a.values.end(), &local(0, r - mine.begin));
    }
  } catch (const Error& e) {
    error = e.what();
  }
  ctx.agree(!error.empty(), error, ExitCode::bad_input);
  const Matrix block = sample_to_neuron_blocks(ctx, local, neuron_layout, row_layout);  // n x rows, column-major
  if (neurons.begin != neuron_layout.range(ctx.rank()).begin || neurons.size() != block.rows()) {
    throw InternalError("read_row_files: the neuron block must be the rank's whole block");
  }
  // Column-major (n x rows) is already the row-major (rows x n) hyperslab.
  const std::span<const double> v = block.values();
  return BulkBlock{FloatBlock(v.begin(), v.end()), BlockOrder::row_major};
}

// Rank 0 holds the whole matrix (neuron-major) and sends every rank its neuron run. Called once per import
// (for_each_block reads these sources in one step), so the importer decodes the source once.
BulkBlock scatter_from_root(const Context& ctx, Importer& importer, const BulkInfo& b, Range neurons) {
  std::int64_t want[2] = {neurons.begin, neurons.size()};
  std::vector<std::int64_t> all(2 * static_cast<std::size_t>(ctx.size()));
  mpi_check(MPI_Allgather(want, 2, MPI_INT64_T, all.data(), 2, MPI_INT64_T, ctx.comm()), "MPI_Allgather");
  // MPI counts are int: every rank sees the same `all`, so this refusal is collective.
  const std::int64_t limit = std::numeric_limits<int>::max();
  for (int r = 0; r < ctx.size(); ++r) {
    if ((all[2 * r] + all[2 * r + 1]) * b.rows > limit) {
      throw InputError(fmt::format("{}: {} is decoded by rank 0 and scattered, which is limited to 2^31 values per "
                                   "rank's offset; use more ranks or an uncompressed source (.npy, HDF5)",
                                   b.file.empty() ? "source" : b.file, b.variable),
                       true);
    }
  }
  std::vector<float> whole;
  on_root(ctx, [&] { whole = importer.load_whole(b); });
  std::vector<int> counts(static_cast<std::size_t>(ctx.size())), displs(counts.size());
  for (int r = 0; r < ctx.size(); ++r) {
    counts[static_cast<std::size_t>(r)] = static_cast<int>(all[2 * r + 1] * b.rows);
    displs[static_cast<std::size_t>(r)] = static_cast<int>(all[2 * r] * b.rows);
  }
  BulkBlock block{FloatBlock(static_cast<std::size_t>(neurons.size() * b.rows)), BlockOrder::neuron_major};
  FloatBlock& out = block.values;
  mpi_check(MPI_Scatterv(whole.data(), counts.data(), displs.data(), MPI_FLOAT, out.data(), static_cast<int>(out.size()),
                         MPI_FLOAT, 0, ctx.comm()),
            "MPI_Scatterv");
  return block;
}

// Collective: CRC-32 of bytes [crc_begin, crc_begin + crc_length) of the file, each rank hashing one slice
// and rank 0 combining them in order; InputError on every rank when it differs from the zip's record.
void verify_crc(const Context& ctx, const BulkInfo& b) {
  const Range mine = BlockLayout(static_cast<std::int64_t>(b.crc_length), ctx.size()).range(ctx.rank());
  uLong crc = crc32(0L, Z_NULL, 0);
  std::string error;
  try {
    Fd fd(b.file);
    std::vector<unsigned char> buf(std::min<std::int64_t>(mine.size(), 16 << 20));
    for (std::int64_t at = mine.begin; at < mine.end;) {
      const std::size_t n = static_cast<std::size_t>(std::min<std::int64_t>(mine.end - at, static_cast<std::int64_t>(buf.size())));
      fd.read_at(buf.data(), n, b.crc_begin + static_cast<std::uint64_t>(at));
      crc = crc32(crc, buf.data(), static_cast<uInt>(n));
      at += static_cast<std::int64_t>(n);
    }
  } catch (const Error& e) {
    error = e.what();
  }
  ctx.agree(!error.empty(), error, ExitCode::bad_input);
  std::vector<unsigned long> all(static_cast<std::size_t>(ctx.size()));
  unsigned long mine_crc = crc;
  mpi_check(MPI_Gather(&mine_crc, 1, MPI_UNSIGNED_LONG, all.data(), 1, MPI_UNSIGNED_LONG, 0, ctx.comm()), "MPI_Gather");
  bool bad = false;
  if (ctx.root()) {
    const BlockLayout slices(static_cast<std::int64_t>(b.crc_length), ctx.size());
    uLong total = all[0];
    for (int r = 1; r < ctx.size(); ++r) total = crc32_combine(total, all[static_cast<std::size_t>(r)], static_cast<z_off_t>(slices.count(r)));
    bad = static_cast<std::uint32_t>(total) != b.crc;
  }
  ctx.agree(bad, fmt::format("{}: member '{}': CRC mismatch (the archive is corrupt)", b.file, b.variable), ExitCode::bad_input);
}

}  // namespace

SourceInfo describe_source(const Context& ctx, Importer& importer, const std::string& path) {
  SourceInfo info;
  on_root(ctx, [&] {
    info = importer.describe();
    info.path = path;
  });
  Packer p;
  if (ctx.root()) transfer_info(p, info);
  const std::string bytes = ctx.broadcast(p.bytes());
  if (!ctx.root()) {
    Unpacker u(bytes);
    transfer_info(u, info);
  }
  return info;
}

BulkBlock read_bulk_block(const Context& ctx, Importer& importer, const SourceInfo& info, const BulkInfo& bulk,
                                   Range neurons) {
  (void)info;
  switch (bulk.kind) {
    case BulkInfo::raw_file: {
      std::string error;
      BulkBlock out;
      try {
        out = read_raw_block(bulk, neurons);
      } catch (const Error& e) {
        error = e.what();
      }
      ctx.agree(!error.empty(), error, ExitCode::bad_input);
      return out;
    }
    case BulkInfo::hdf5: return read_hdf5_block(ctx, bulk, neurons);
    case BulkInfo::hdf5_binned: return read_binned_block(ctx, bulk, neurons);
    case BulkInfo::row_files: return read_row_files(ctx, bulk, neurons);
    case BulkInfo::root_scatter: return scatter_from_root(ctx, importer, bulk, neurons);
    default: throw InternalError(fmt::format("{}: nothing to read", bulk.variable));
  }
}

namespace {

// Reads `bulk` by neuron sub-blocks of at most ~256 MiB of float32 per rank and hands each to `sink`
// (the same number of collective steps on every rank). Row-file and root-scatter sources are read in one
// step: their data pass through an exchange that needs the rank's whole block anyway, and rank 0 decodes a
// scattered source once.
template <typename Sink>
void for_each_block(const Context& ctx, Importer& importer, const SourceInfo& info, const BulkInfo& bulk,
                    const std::string& label, Sink&& sink) {
  const Range mine = BlockLayout(bulk.neurons, ctx.size()).range(ctx.rank());
  std::int64_t rows_held = bulk.rows;
  if (bulk.kind == BulkInfo::hdf5_binned && !bulk.window_end.empty()) {
    rows_held = std::max(rows_held, *std::max_element(bulk.window_end.begin(), bulk.window_end.end()));
  }
  const bool one_step = bulk.kind == BulkInfo::row_files || bulk.kind == BulkInfo::root_scatter;
  const std::int64_t step = one_step
                                ? std::max<std::int64_t>(1, mine.size())
                                : std::max<std::int64_t>(1, (256ll << 20) / (4 * std::max<std::int64_t>(rows_held, 1)));
  const std::int64_t steps = ctx.max((mine.size() + step - 1) / step);
  Progress progress(label, static_cast<std::size_t>(std::max<std::int64_t>(steps, 1)));
  for (std::int64_t s = 0; s < steps; ++s) {
    const std::int64_t b0 = std::min(mine.end, mine.begin + s * step), b1 = std::min(mine.end, b0 + step);
    const Range part{b0, b1};
    const BulkBlock block = read_bulk_block(ctx, importer, info, bulk, part);
    sink(part, block);
    progress.advance();
  }
  progress.finish();
}

// Branch-free on the bit patterns (exponent all ones: NaN when the mantissa is non-zero, else infinity),
// so the loop vectorises.
void count_values(std::span<const float> v, ImportSummary& s) {
  std::int64_t nan = 0, inf = 0;
  for (const float x : v) {
    const std::uint32_t magnitude = std::bit_cast<std::uint32_t>(x) & 0x7fffffffu;
    nan += magnitude > 0x7f800000u;
    inf += magnitude == 0x7f800000u;
  }
  s.nan += nan;
  s.inf += inf;
}

}  // namespace

ImportSummary import_recording(const Context& ctx, const std::string& path, const std::string& out,
                               const ImportOptions& options) {
  const auto t0 = std::chrono::steady_clock::now();
  std::unique_ptr<Importer> importer;
  on_every_rank(ctx, [&] {
    if (out.empty()) throw UsageError("popcode import: --out is required");
    std::error_code ec;
    if (std::filesystem::exists(out, ec)) throw UsageError(fmt::format("{}: exists; popcode import does not overwrite files", out));
    importer = make_importer(path, options);
  });

  const SourceInfo info = describe_source(ctx, *importer, path);
  if (ctx.root()) {
    log::info("import: {} ({}): {} presentations x {} neurons, {} images{}", path, info.format, info.layout.presentations,
              info.layout.neurons, info.layout.images,
              info.layout.spont_timepoints > 0 ? fmt::format(", {} spontaneous time points", info.layout.spont_timepoints) : "");
    // Only rank 0 holds the description's notes.
  }
  ImportSummary summary;
  summary.presentations = info.layout.presentations;
  summary.neurons = info.layout.neurons;
  summary.images = info.layout.images;
  summary.spont = info.layout.spont_timepoints;
  if (info.responses.check_crc) verify_crc(ctx, info.responses);
  {
    RecordingWriter writer(ctx, out, info.layout);
    for_each_block(ctx, *importer, info, info.responses, "import responses", [&](Range part, const BulkBlock& b) {
      count_values(b.values, summary);
      writer.write_columns("/responses", part, b.values, b.order);
    });
    if (info.layout.spont_timepoints > 0) {
      for_each_block(ctx, *importer, info, info.spontaneous, "import spontaneous", [&](Range part, const BulkBlock& b) {
        count_values(b.values, summary);
        writer.write_columns("/spontaneous", part, b.values, b.order);
      });
    }
    // Small per-neuron arrays and the images: rank 0 holds them (from describe) and writes all rows.
    const Range all_neurons{0, ctx.root() ? info.layout.neurons : 0};
    if (info.layout.positions) {
      std::vector<std::int32_t> plane(static_cast<std::size_t>(all_neurons.size()), 0);
      writer.write_rows<double>("/neurons/position", all_neurons, ctx.root() ? info.positions : std::vector<double>{});
      writer.write_rows<std::int32_t>("/neurons/plane", all_neurons, plane);
    }
    if (info.layout.gad) writer.write_rows<std::uint8_t>("/neurons/gad_positive", all_neurons, ctx.root() ? info.gad : std::vector<std::uint8_t>{});
    if (info.layout.image_height > 0) {
      std::vector<float> images;
      on_root(ctx, [&] { images = importer->load_images(); });
      writer.write_rows<float>("/images", Range{0, ctx.root() ? info.layout.images : 0}, images);
    }
    std::int64_t counts[2] = {summary.nan, summary.inf};
    ctx.allreduce_sum(std::span<std::int64_t>(counts, 2));
    summary.nan = counts[0];
    summary.inf = counts[1];
    writer.finish(info.meta, [&](const h5::File& f) {
      h5::write_attribute(f, "/", "imported_from", path);
      h5::write_attribute(f, "/", "imported_format", info.format);
      if (!info.tier.empty()) {
        h5::write_all<std::int32_t>(f, "/presentation_tier", {info.layout.presentations}, info.tier);
        h5::write_attribute(f, "/presentation_tier", "names", info.tier_names);
      }
      if (!info.image_source_id.empty()) {
        std::vector<double> ids(info.image_source_id.begin(), info.image_source_id.end());
        h5::write_all<double>(f, "/image_source_id", {info.layout.images}, ids);
        h5::write_attribute(f, "/image_source_id", "description", "id of each image in the source files");
      }
      if (!info.notes.empty()) h5::write_attribute(f, "/", "import_notes", info.notes);
    });
  }
  summary.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  summary.bytes = 4.0 * static_cast<double>(summary.neurons) * static_cast<double>(summary.presentations + summary.spont);
  if (ctx.root()) {
    for (const auto& note : info.notes) log::info("import: {}", note);
    if (summary.nan + summary.inf > 0) {
      log::warn_once("import: {} NaN and {} Inf values copied as they are (preprocessing sets NaN to 0 and refuses Inf)",
                     summary.nan, summary.inf);
    }
    log::info("import: wrote {} in {:.2f} s", out, summary.seconds);
  }
  return summary;
}

namespace {

std::string json_escape(const std::string& s) {
  std::string o;
  for (char ch : s) {
    const auto u = static_cast<unsigned char>(ch);
    if (ch == '"' || ch == '\\') {
      o += '\\';
      o += ch;
    } else if (u < 0x20) {
      o += fmt::format("\\u{:04x}", u);
    } else {
      o += ch;
    }
  }
  return '"' + o + '"';
}

std::string json_ints(const std::vector<std::int64_t>& v) {
  std::string s = "[";
  for (std::size_t i = 0; i < v.size(); ++i) s += (i ? ", " : "") + std::to_string(v[i]);
  return s + "]";
}

// Repeat structure: how many images were shown k times, for each k.
std::map<std::int64_t, std::int64_t> repeat_histogram(const SourceInfo& info) {
  std::vector<std::int64_t> shown(static_cast<std::size_t>(std::max<std::int64_t>(info.layout.images, 0)), 0);
  for (std::int32_t id : info.meta.stimulus_id)
    if (id >= 0 && id < info.layout.images) ++shown[static_cast<std::size_t>(id)];
  std::map<std::int64_t, std::int64_t> h;
  for (std::int64_t k : shown) ++h[k];
  return h;
}

}  // namespace

std::string inspect_source(const Context& ctx, const std::string& path, const ImportOptions& options, bool json) {
  std::unique_ptr<Importer> importer;
  on_every_rank(ctx, [&] { importer = make_importer(path, options); });
  SourceInfo info = describe_source(ctx, *importer, path);
  const std::string described = info.format;
  // Rank 0 holds the variables; count NaN/Inf in the bulk arrays by reading them like an import does.
  std::int64_t counts[4] = {0, 0, 0, 0};
  ImportSummary resp_counts, spont_counts;
  for_each_block(ctx, *importer, info, info.responses, "inspect responses",
                 [&](Range, const BulkBlock& b) { count_values(b.values, resp_counts); });
  if (info.layout.spont_timepoints > 0) {
    for_each_block(ctx, *importer, info, info.spontaneous, "inspect spontaneous",
                   [&](Range, const BulkBlock& b) { count_values(b.values, spont_counts); });
  }
  counts[0] = resp_counts.nan;
  counts[1] = resp_counts.inf;
  counts[2] = spont_counts.nan;
  counts[3] = spont_counts.inf;
  ctx.allreduce_sum(std::span<std::int64_t>(counts, 4));
  if (!ctx.root()) return {};
  for (auto& v : info.variables) {
    if (v.name == info.responses.variable) {
      v.nan = counts[0];
      v.inf = counts[1];
    } else if (info.layout.spont_timepoints > 0 && v.name == info.spontaneous.variable) {
      v.nan = counts[2];
      v.inf = counts[3];
    }
  }
  const auto repeats = repeat_histogram(info);
  std::int64_t gray = 0;
  for (std::int32_t id : info.meta.stimulus_id) gray += id == kGrayScreenId;
  const auto& L = info.layout;
  std::string s;
  if (json) {
    s += "{\n";
    s += fmt::format("  \"file\": {},\n  \"format\": {},\n", json_escape(path), json_escape(described));
    s += fmt::format("  \"presentations\": {},\n  \"neurons\": {},\n  \"images\": {},\n  \"gray_screen_presentations\": {},\n",
                     L.presentations, L.neurons, L.images, gray);
    s += fmt::format("  \"spontaneous_timepoints\": {},\n  \"image_shape\": {},\n", L.spont_timepoints,
                     L.image_height > 0 ? json_ints({L.image_height, L.image_width}) : "null");
    s += "  \"repeats\": {";
    bool first = true;
    for (const auto& [k, n] : repeats) {
      s += fmt::format("{}\"{}\": {}", first ? "" : ", ", k, n);
      first = false;
    }
    s += "},\n  \"variables\": [\n";
    for (std::size_t i = 0; i < info.variables.size(); ++i) {
      const auto& v = info.variables[i];
      s += fmt::format("    {{\"name\": {}, \"shape\": {}, \"dtype\": {}, \"nan\": {}, \"inf\": {}, \"use\": {}}}{}\n",
                       json_escape(v.name), json_ints(v.shape), json_escape(v.dtype), v.nan < 0 ? "null" : std::to_string(v.nan),
                       v.inf < 0 ? "null" : std::to_string(v.inf), json_escape(v.use), i + 1 < info.variables.size() ? "," : "");
    }
    s += "  ],\n  \"notes\": [";
    for (std::size_t i = 0; i < info.notes.size(); ++i) s += (i ? ", " : "") + json_escape(info.notes[i]);
    s += "]\n}\n";
    return s;
  }
  s += fmt::format("{}\n  format: {}\n", path, described);
  s += fmt::format("  popcode will import: {} presentations x {} neurons, {} images ({} gray-screen presentations)\n",
                   L.presentations, L.neurons, L.images, gray);
  if (L.spont_timepoints > 0) s += fmt::format("  spontaneous activity: {} time points\n", L.spont_timepoints);
  if (L.image_height > 0) s += fmt::format("  images: {} x {} pixels\n", L.image_height, L.image_width);
  s += "  repeats: ";
  bool first = true;
  for (const auto& [k, n] : repeats) {
    s += fmt::format("{}{} images shown {}x", first ? "" : ", ", n, k);
    first = false;
  }
  s += "\n  variables:\n";
  for (const auto& v : info.variables) {
    std::string counted;
    if (v.nan >= 0) counted = fmt::format("  NaN {} Inf {}", v.nan, v.inf);
    s += fmt::format("    {:<28} {:<18} {:<8}{}\n      -> {}\n", v.name, shape_text(v.shape), v.dtype, counted, v.use);
  }
  for (const auto& n : info.notes) s += fmt::format("  note: {}\n", n);
  return s;
}

}  // namespace popcode
