#include "io/recording.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <filesystem>

#include "io/h5.hpp"
#include "src/log.hpp"
#include "src/pack.hpp"
#include "src/timing.hpp"

namespace popcode {
namespace {

// Collects every problem found in one file so the user sees them all at once.
class Problems {
 public:
  explicit Problems(std::string file) : file_(std::move(file)) {}
  void add(const std::string& dataset, const std::string& text) { items_.push_back(fmt::format("{}: {}", dataset, text)); }
  bool empty() const { return items_.empty(); }
  std::string message() const {
    if (items_.size() == 1) return fmt::format("{}: {}", file_, items_.front());
    std::string m = fmt::format("{}: {} problems:", file_, items_.size());
    for (const auto& i : items_) m += "\n  - " + i;
    return m;
  }

 private:
  std::string file_;
  std::vector<std::string> items_;
};

std::string optional_string_attribute(const h5::File& f, const std::string& name) {
  return h5::has_attribute(f, "/", name) ? h5::read_string_attribute(f, "/", name) : std::string("unknown");
}

bool is_float(const h5::DatasetShape& s) { return s.type_class == H5T_FLOAT; }
bool is_integer(const h5::DatasetShape& s) { return s.type_class == H5T_INTEGER; }

// Checks an optional per-neuron or per-presentation dataset's shape; returns true when present and valid.
bool check_vector(const h5::File& f, Problems& p, const std::string& path, std::int64_t length, bool want_float,
                  const char* what) {
  if (!h5::exists(f, path)) return false;
  const auto s = h5::shape_of(f, path);
  const bool type_ok = want_float ? is_float(s) : is_integer(s);
  if (s.dims.size() != 1 || s.dims[0] != length || !type_ok) {
    p.add(path, fmt::format("expected {} [{}] ({}), found {}", want_float ? "float" : "integer", length, what, s.describe()));
    return false;
  }
  return true;
}

std::string fingerprint_of(const std::string& path) {
  std::error_code ec;
  const auto size = std::filesystem::file_size(path, ec);
  const auto time = std::filesystem::last_write_time(path, ec).time_since_epoch().count();
  return fmt::format("{}:{}", size, time);
}

RecordingInfo inspect(const std::string& path) {
  h5::File f = h5::File::open(path, h5::Access::read_only, ExitCode::bad_input);
  Problems p(path);
  RecordingInfo info;
  info.path = path;
  info.fingerprint = fingerprint_of(path);

  if (h5::has_attribute(f, "/", "format")) {
    const std::string format = h5::read_string_attribute(f, "/", "format");
    if (format != kRecordingFormat) p.add("/ (attribute format)", fmt::format("expected '{}', found '{}'", kRecordingFormat, format));
  } else {
    log::warn_once("{}: no 'format' attribute; reading it as a popcode recording (see docs/format.md)", path);
  }
  if (h5::has_attribute(f, "/", "format_version")) {
    const auto v = h5::read_int_attribute(f, "/", "format_version");
    if (v > kRecordingFormatVersion) {
      p.add("/ (attribute format_version)", fmt::format("this popcode reads versions <= {}, found {}", kRecordingFormatVersion, v));
    }
  }
  info.source = optional_string_attribute(f, "source");
  info.subject = optional_string_attribute(f, "subject");
  info.session = optional_string_attribute(f, "session");
  info.units = optional_string_attribute(f, "units");

  if (!h5::exists(f, "/responses")) {
    p.add("/responses", "dataset is missing (expected float32 [presentations x neurons])");
    throw InputError(p.message());
  }
  const auto resp = h5::shape_of(f, "/responses");
  if (resp.dims.size() != 2 || !is_float(resp)) {
    p.add("/responses", fmt::format("expected float32 [presentations x neurons], found {}", resp.describe()));
    throw InputError(p.message());
  }
  info.presentations = resp.dims[0];
  info.neurons = resp.dims[1];
  if (info.presentations == 0) p.add("/responses", "has 0 presentations");
  if (info.neurons == 0) p.add("/responses", "has 0 neurons");

  // Number of distinct images: the n_images attribute, else the images dataset, else the largest id + 1.
  std::int64_t images_from_attr = -1;
  if (h5::has_attribute(f, "/", "n_images")) images_from_attr = h5::read_int_attribute(f, "/", "n_images");
  if (h5::exists(f, "/images")) {
    const auto s = h5::shape_of(f, "/images");
    if (s.dims.size() != 3 || !(is_float(s) || is_integer(s))) {
      p.add("/images", fmt::format("expected float32 [images x height x width], found {}", s.describe()));
    } else {
      info.has_images = true;
      info.image_height = s.dims[1];
      info.image_width = s.dims[2];
      if (images_from_attr >= 0 && images_from_attr != s.dims[0]) {
        p.add("/images", fmt::format("has {} images but the file's n_images attribute says {}", s.dims[0], images_from_attr));
      }
      images_from_attr = s.dims[0];
    }
  }

  if (!h5::exists(f, "/stimulus_id")) {
    p.add("/stimulus_id", "dataset is missing (expected int32 [presentations], -1 for gray screens)");
  } else {
    const auto s = h5::shape_of(f, "/stimulus_id");
    if (s.dims.size() != 1 || s.dims[0] != info.presentations || !is_integer(s)) {
      p.add("/stimulus_id", fmt::format("expected int32 [{}] (one per row of /responses), found {}", info.presentations, s.describe()));
    } else {
      info.stimulus_id = h5::read_all<std::int32_t>(f, "/stimulus_id");
      const std::int32_t max_id = info.stimulus_id.empty() ? -1 : *std::max_element(info.stimulus_id.begin(), info.stimulus_id.end());
      info.images = images_from_attr >= 0 ? images_from_attr : max_id + 1;
      if (images_from_attr < 0) {
        log::warn_once("{}: no n_images attribute and no /images; assuming {} images from the largest stimulus id", path, info.images);
      }
      std::int64_t bad = 0, first_bad = -1;
      for (std::size_t i = 0; i < info.stimulus_id.size(); ++i) {
        const auto id = info.stimulus_id[i];
        if (id < kGrayScreenId || id >= info.images) {
          if (bad++ == 0) first_bad = static_cast<std::int64_t>(i);
        }
      }
      if (bad > 0) {
        p.add("/stimulus_id", fmt::format("{} ids outside [-1, {}) (n_images = {}); first at presentation {}: {}", bad,
                                          info.images, info.images, first_bad, info.stimulus_id[static_cast<std::size_t>(first_bad)]));
      }
    }
  }

  if (check_vector(f, p, "/presentation_time", info.presentations, true, "seconds, one per presentation")) {
    info.presentation_time = h5::read_all<double>(f, "/presentation_time");
    const auto nonfinite = std::count_if(info.presentation_time.begin(), info.presentation_time.end(),
                                         [](double t) { return !std::isfinite(t); });
    if (nonfinite > 0) p.add("/presentation_time", fmt::format("{} values are NaN or Inf", nonfinite));
  } else {
    info.presentation_time.resize(static_cast<std::size_t>(info.presentations));
    for (std::size_t i = 0; i < info.presentation_time.size(); ++i) info.presentation_time[i] = static_cast<double>(i);
  }

  if (h5::exists(f, "/spontaneous")) {
    const auto s = h5::shape_of(f, "/spontaneous");
    if (s.dims.size() != 2 || s.dims[1] != info.neurons || !is_float(s)) {
      p.add("/spontaneous", fmt::format("expected float32 [timepoints x {}], found {}", info.neurons, s.describe()));
    } else {
      info.spont_timepoints = s.dims[0];
    }
  }
  if (h5::exists(f, "/neurons/position")) {
    const auto s = h5::shape_of(f, "/neurons/position");
    if (s.dims.size() != 2 || s.dims[0] != info.neurons || s.dims[1] != 3 || !is_float(s)) {
      p.add("/neurons/position", fmt::format("expected float64 [{} x 3] (x, y, z in um), found {}", info.neurons, s.describe()));
    } else {
      info.has_positions = true;
    }
  }
  info.has_planes = check_vector(f, p, "/neurons/plane", info.neurons, false, "imaging plane per neuron");
  info.has_gad = check_vector(f, p, "/neurons/gad_positive", info.neurons, false, "1 for GAD+ neurons");
  info.has_orientation = check_vector(f, p, "/orientation", info.presentations, true, "radians, one per presentation");

  const bool labels = h5::exists(f, "/classes/label"), names = h5::exists(f, "/classes/names");
  if (labels != names) {
    p.add("/classes", "needs both label and names");
  } else if (labels) {
    const bool label_ok = check_vector(f, p, "/classes/label", info.images, false, "class per image");
    const auto class_names = h5::read_strings(f, "/classes/names");
    if (label_ok) {
      const auto l = h5::read_all<std::int32_t>(f, "/classes/label");
      const auto bad = std::count_if(l.begin(), l.end(), [&](std::int32_t c) {
        return c < 0 || c >= static_cast<std::int32_t>(class_names.size());
      });
      if (bad > 0) p.add("/classes/label", fmt::format("{} labels outside [0, {}) (the number of class names)", bad, class_names.size()));
      info.has_classes = bad == 0;
    }
  }
  info.has_truth = h5::exists(f, "/truth");
  if (!p.empty()) throw InputError(p.message());
  return info;
}

// The fields of RecordingInfo in one order, for both directions of the broadcast (Packer and Unpacker
// both provide `io`).
template <typename Archive, typename Info>
void transfer(Archive& a, Info& i) {
  a.io(i.path);
  a.io(i.presentations);
  a.io(i.neurons);
  a.io(i.images);
  a.io(i.spont_timepoints);
  a.io(i.image_height);
  a.io(i.image_width);
  a.io(i.has_images);
  a.io(i.has_classes);
  a.io(i.has_orientation);
  a.io(i.has_positions);
  a.io(i.has_planes);
  a.io(i.has_gad);
  a.io(i.has_truth);
  a.io(i.stimulus_id);
  a.io(i.presentation_time);
  a.io(i.source);
  a.io(i.subject);
  a.io(i.session);
  a.io(i.units);
  a.io(i.fingerprint);
}

std::string pack(const RecordingInfo& info) {
  Packer p;
  transfer(p, info);
  return p.bytes();
}

RecordingInfo unpack(const std::string& bytes) {
  Unpacker u(bytes);
  RecordingInfo info;
  transfer(u, info);
  return info;
}

// Rows per collective read slab: bounds the float32 staging buffer to 256 MiB per rank, so a block of up to
// 256 MiB (e.g. 10,000 neurons x 6,700 presentations) is one collective hyperslab read.
std::int64_t slab_rows(std::int64_t columns) {
  constexpr std::int64_t kBudget = 256ll << 20;
  return std::max<std::int64_t>(1, kBudget / (4 * std::max<std::int64_t>(columns, 1)));
}

}  // namespace

Recording Recording::open(const Context& ctx, const std::string& path) {
  std::string bytes;
  on_root(ctx, [&] {
    try {
      bytes = pack(inspect(path));
    } catch (const Error&) {
      throw;
    } catch (const std::exception& e) {
      throw InternalError(fmt::format("{}: {}", path, e.what()));
    }
  });
  Recording r;
  r.info_ = unpack(ctx.broadcast(bytes));
  return r;
}

Matrix read_column_block(const Context& ctx, const std::string& path, const std::string& dataset, std::int64_t rows,
                         Range columns, ValueCounts* local_counts) {
  h5::File f = h5::File::open_parallel(path, h5::Access::read_only, ctx.comm(), ExitCode::bad_input);
  const std::int64_t n = columns.size();
  Matrix out(n, rows);
  // Same number of slabs on every rank (the slab height depends only on the largest block).
  const std::int64_t slab = slab_rows(ctx.max(n));
  std::vector<float> buf;
  ValueCounts counts;
  for (std::int64_t r0 = 0; r0 < rows; r0 += slab) {
    const std::int64_t r1 = std::min(rows, r0 + slab);
    buf.resize(static_cast<std::size_t>((r1 - r0) * n));
    h5::read_block<float>(f, dataset, {r0, columns.begin}, {n > 0 ? r1 - r0 : 0, n}, buf);
    if (n == 0) continue;
    // Row r of the slab is sample r0 + r: one contiguous column of `out`.
    double* dst = &out(0, r0);
    for (std::size_t k = 0; k < buf.size(); ++k) {
      const float v = buf[k];
      if (std::isnan(v)) {
        ++counts.nan;
      } else if (std::isinf(v)) {
        ++counts.inf;
      }
      dst[k] = v;
    }
  }
  f.close();
  if (local_counts != nullptr) *local_counts = counts;
  return out;
}

namespace {
Matrix read_counted(const Context& ctx, const std::string& path, const std::string& dataset, std::int64_t rows,
                    Range neurons, ValueCounts* counts) {
  ValueCounts local;
  Matrix m = read_column_block(ctx, path, dataset, rows, neurons, &local);
  if (counts != nullptr) {
    std::int64_t totals[2] = {local.nan, local.inf};
    ctx.allreduce_sum(std::span<std::int64_t>(totals, 2));
    counts->nan = totals[0];
    counts->inf = totals[1];
  }
  return m;
}
}  // namespace

Matrix Recording::read_responses(const Context& ctx, Range neurons, ValueCounts* counts) const {
  return read_counted(ctx, info_.path, "/responses", info_.presentations, neurons, counts);
}

Matrix Recording::read_spontaneous(const Context& ctx, Range neurons, ValueCounts* counts) const {
  if (info_.spont_timepoints == 0) throw InputError(fmt::format("{}: /spontaneous is missing", info_.path), true);
  return read_counted(ctx, info_.path, "/spontaneous", info_.spont_timepoints, neurons, counts);
}

std::vector<std::uint8_t> Recording::read_gad(const Context& ctx, Range neurons) const {
  std::vector<std::uint8_t> out(static_cast<std::size_t>(neurons.size()));
  if (!info_.has_gad) return out;
  h5::File f = h5::File::open_parallel(info_.path, h5::Access::read_only, ctx.comm(), ExitCode::bad_input);
  h5::read_block<std::uint8_t>(f, "/neurons/gad_positive", {neurons.begin}, {neurons.size()}, out);
  f.close();
  return out;
}

std::vector<std::int32_t> Recording::read_class_labels(const Context& ctx, std::vector<std::string>* names) const {
  std::vector<std::int32_t> labels;
  if (!info_.has_classes) return labels;
  h5::File f = h5::File::open_parallel(info_.path, h5::Access::read_only, ctx.comm(), ExitCode::bad_input);
  labels = h5::read_all<std::int32_t>(f, "/classes/label");
  if (names) *names = h5::read_strings(f, "/classes/names");
  f.close();
  return labels;
}

std::vector<double> Recording::read_orientation(const Context& ctx) const {
  std::vector<double> angles;
  if (!info_.has_orientation) return angles;
  h5::File f = h5::File::open_parallel(info_.path, h5::Access::read_only, ctx.comm(), ExitCode::bad_input);
  angles = h5::read_all<double>(f, "/orientation");
  f.close();
  return angles;
}

std::vector<float> Recording::read_images(const Context& ctx, std::span<const std::int32_t> ids) const {
  const std::int64_t pixels = info_.image_height * info_.image_width;
  std::vector<float> all(static_cast<std::size_t>(info_.images * pixels));
  h5::File f = h5::File::open_parallel(info_.path, h5::Access::read_only, ctx.comm(), ExitCode::bad_input);
  h5::read_block<float>(f, "/images", {0, 0, 0}, {info_.images, info_.image_height, info_.image_width}, all);
  f.close();
  std::vector<float> out(ids.size() * static_cast<std::size_t>(pixels));
  for (std::size_t j = 0; j < ids.size(); ++j)
    std::copy_n(all.begin() + static_cast<std::ptrdiff_t>(ids[j]) * pixels, pixels,
                out.begin() + static_cast<std::ptrdiff_t>(j) * pixels);
  return out;
}

std::vector<double> Recording::read_neuron_rows(const Context& ctx, const std::string& dataset,
                                                std::span<const std::int64_t> neurons, std::int64_t width) const {
  h5::File f = h5::File::open_parallel(info_.path, h5::Access::read_only, ctx.comm(), ExitCode::bad_input);
  const bool vector = h5::shape_of(f, dataset).dims.size() == 1;
  const std::int64_t first = neurons.empty() ? 0 : neurons.front();
  const std::int64_t span_rows = neurons.empty() ? 0 : neurons.back() - first + 1;
  std::vector<double> block(static_cast<std::size_t>(span_rows * width));
  if (vector)
    h5::read_block<double>(f, dataset, {first}, {span_rows}, block);
  else
    h5::read_block<double>(f, dataset, {first, 0}, {span_rows, width}, block);
  f.close();
  std::vector<double> out;
  out.reserve(neurons.size() * static_cast<std::size_t>(width));
  for (const std::int64_t i : neurons)
    out.insert(out.end(), block.begin() + (i - first) * width, block.begin() + (i - first + 1) * width);
  return out;
}

}  // namespace popcode
