// NWB 2.x two-photon files (DANDI), read with the HDF5 C API (no pynwb).
//
//   processing/ophys/<container>/<series>   RoiResponseSeries: data (time x ROIs), timestamps or
//                                           starting_time + rate      -> averaged per presentation -> /responses
//   processing/ophys/ImageSegmentation/<plane>/image_mask (ROIs x H x W)
//                                           -> weighted centroid (x, y, 0) in pixels -> /neurons/position
//   intervals/<table>                       start_time, stop_time and a stimulus column (--stimulus, else the
//                                           first of image_index, image_id, frame, stimulus_id, stim_id)
//                                           -> one presentation per row; stimulus ids made dense
// The series is chosen with --nwb-series (an HDF5 path), else the first RoiResponseSeries found under
// processing/ophys (deconvolved or dF/F, whichever the file lists first; inspect shows all of them);
// the table with --nwb-table, else the first table under intervals/ with start_time and stop_time.
//
// A presentation's response is the mean of the series over the samples whose time lies in
// [start_time, stop_time). Reading: every rank reads its ROI columns of the series (all time points, in
// neuron sub-blocks of at most 256 MiB) with collective hyperslabs and averages them itself.
#include <fmt/format.h>

#include <algorithm>
#include <cmath>

#include "io/h5.hpp"
#include "io/importers/formats.hpp"
#include "io/recording.hpp"

namespace popcode {
namespace {

std::string neurodata_type(const h5::File& f, const std::string& path) {
  if (!h5::has_attribute(f, path, "neurodata_type")) return "";
  try {
    return h5::read_string_attribute(f, path, "neurodata_type");
  } catch (const Error&) {
    return "";
  }
}

bool is_group(const h5::File& f, const std::string& path) {
  H5O_info_t oi;
  if (H5Oget_info_by_name(f.id(), path.c_str(), &oi, H5P_DEFAULT) < 0) return false;
  return oi.type == H5O_TYPE_GROUP;
}

std::string dtype_text(const h5::DatasetShape& s) {
  switch (s.type_class) {
    case H5T_FLOAT: return fmt::format("float{}", 8 * s.type_size);
    case H5T_INTEGER: return fmt::format("{}int{}", s.is_signed ? "" : "u", 8 * s.type_size);
    case H5T_STRING: return "string";
    case H5T_COMPOUND: return "compound";
    case H5T_REFERENCE: return "reference";
    default: return "other";
  }
}

bool numeric(const h5::DatasetShape& s) { return s.type_class == H5T_FLOAT || s.type_class == H5T_INTEGER; }

class NwbImporter final : public Importer {
 public:
  NwbImporter(std::string path, ImportOptions options) : path_(std::move(path)), options_(std::move(options)) {}

  SourceInfo describe() override {
    SourceInfo info;
    info.format = "nwb";
    h5::File f = h5::File::open(path_, h5::Access::read_only, ExitCode::bad_input);
    std::string version;
    if (h5::has_attribute(f, "/", "nwb_version")) version = h5::read_string_attribute(f, "/", "nwb_version");
    if (version.empty()) {
      if (h5::has_attribute(f, "/", "format") && h5::read_string_attribute(f, "/", "format") == kRecordingFormat) {
        throw InputError(fmt::format("{}: already a popcode recording; use it directly (no import needed)", path_));
      }
      throw InputError(fmt::format("{}: an HDF5 file without the nwb_version attribute: not an NWB file", path_));
    }
    info.notes.push_back("NWB version " + version);
    if (!h5::exists(f, "/processing/ophys")) {
      throw InputError(fmt::format("{}: no processing/ophys module: no two-photon ROI responses to import", path_));
    }
    // All RoiResponseSeries (two levels below processing/ophys).
    std::vector<std::string> series;
    std::string segmentation;
    for (const std::string& c : h5::list(f, "/processing/ophys")) {
      const std::string cp = "/processing/ophys/" + c;
      if (!is_group(f, cp)) continue;
      const std::string ct = neurodata_type(f, cp);
      for (const std::string& s : h5::list(f, cp)) {
        const std::string sp = cp + "/" + s;
        if (!is_group(f, sp)) continue;
        const std::string st = neurodata_type(f, sp);
        if (st == "RoiResponseSeries") series.push_back(sp);
        if (st == "PlaneSegmentation" && segmentation.empty()) segmentation = sp;
      }
      (void)ct;
    }
    const std::string chosen = options_.nwb_series.empty() ? (series.empty() ? "" : series.front()) : options_.nwb_series;
    if (chosen.empty()) throw InputError(fmt::format("{}: no RoiResponseSeries under processing/ophys", path_));
    if (!h5::exists(f, chosen + "/data")) throw InputError(fmt::format("{}: {} has no data dataset", path_, chosen));
    for (const std::string& s : series) {
      const auto sh = h5::shape_of(f, s + "/data");
      info.variables.push_back({s + "/data", sh.dims, dtype_text(sh), -1, -1, s == chosen ? "/responses (mean over each presentation)" : "ignored: another series (--nwb-series)"});
    }
    const auto shape = h5::shape_of(f, chosen + "/data");
    if (shape.dims.size() != 2 || !numeric(shape) || shape.dims[0] == 0 || shape.dims[1] == 0) {
      throw InputError(fmt::format("{}: {}/data is {}, expected a non-empty numeric (time x ROIs) matrix", path_, chosen, shape.describe()));
    }
    const std::int64_t samples = shape.dims[0], rois = shape.dims[1];
    // Sample times.
    std::vector<double> times;
    if (h5::exists(f, chosen + "/timestamps")) {
      times = h5::read_all<double>(f, chosen + "/timestamps");
      if (static_cast<std::int64_t>(times.size()) != samples) {
        throw InputError(fmt::format("{}: {}/timestamps has {} entries for {} samples", path_, chosen, times.size(), samples));
      }
      for (std::size_t i = 1; i < times.size(); ++i) {
        if (!(times[i] >= times[i - 1])) throw InputError(fmt::format("{}: {}/timestamps decrease at sample {}", path_, chosen, i));
      }
    } else if (h5::exists(f, chosen + "/starting_time")) {
      const double t0 = h5::read_scalar(f, chosen + "/starting_time");
      const double rate = h5::read_double_attribute(f, chosen + "/starting_time", "rate");
      if (!(rate > 0) || !std::isfinite(t0)) {
        throw InputError(fmt::format("{}: {}/starting_time = {} with rate {}: expected a finite start and a rate > 0", path_, chosen, t0, rate));
      }
      times.resize(static_cast<std::size_t>(samples));
      for (std::int64_t i = 0; i < samples; ++i) times[static_cast<std::size_t>(i)] = t0 + static_cast<double>(i) / rate;
    } else {
      throw InputError(fmt::format("{}: {} has neither timestamps nor starting_time", path_, chosen));
    }
    // Presentation table.
    std::string table = options_.nwb_table;
    if (table.empty() && h5::exists(f, "/intervals")) {
      for (const std::string& t : h5::list(f, "/intervals")) {
        const std::string tp = "/intervals/" + t;
        if (is_group(f, tp) && h5::exists(f, tp + "/start_time") && h5::exists(f, tp + "/stop_time")) {
          table = tp;
          break;
        }
      }
    }
    if (table.empty()) throw InputError(fmt::format("{}: no presentation table (intervals/ with start_time and stop_time)", path_));
    const auto start = h5::read_all<double>(f, table + "/start_time");
    const auto stop = h5::read_all<double>(f, table + "/stop_time");
    if (start.empty() || start.size() != stop.size()) {
      throw InputError(fmt::format("{}: {} has {} start times and {} stop times", path_, table, start.size(), stop.size()));
    }
    const std::int64_t P = static_cast<std::int64_t>(start.size());
    BulkInfo& b = info.responses;
    b.kind = BulkInfo::hdf5_binned;
    b.file = path_;
    b.dataset = chosen + "/data";
    b.rows = P;
    b.neurons = rois;
    b.variable = chosen + "/data";
    for (std::int64_t p = 0; p < P; ++p) {
      const double t0 = start[static_cast<std::size_t>(p)], t1 = stop[static_cast<std::size_t>(p)];
      const auto s0 = std::lower_bound(times.begin(), times.end(), t0) - times.begin();
      const auto s1 = std::lower_bound(times.begin(), times.end(), t1) - times.begin();
      if (!(t1 > t0) || s1 <= s0) {
        throw InputError(fmt::format("{}: {} row {}: window [{}, {}) s holds no sample of {} (samples span {} to {} s)", path_,
                                     table, p, t0, t1, chosen, times.front(), times.back()));
      }
      b.window_begin.push_back(s0);
      b.window_end.push_back(s1);
    }
    auto& L = info.layout;
    L.presentations = P;
    L.neurons = rois;
    L.source = fmt::format("{} (NWB {})", path_, version);
    L.units = h5::has_attribute(f, chosen + "/data", "unit") ? h5::read_string_attribute(f, chosen + "/data", "unit") : "as stored";
    // Stimulus column.
    std::vector<std::string> candidates = {"image_index", "image_id", "frame", "stimulus_id", "stim_id"};
    if (!options_.stimulus.empty()) candidates = {options_.stimulus};
    std::string column;
    for (const std::string& c : candidates) {
      if (h5::exists(f, table + "/" + c)) {
        column = c;
        break;
      }
    }
    for (const std::string& c : h5::list(f, table)) {
      if (is_group(f, table + "/" + c)) continue;
      const auto sh = h5::shape_of(f, table + "/" + c);
      std::string use = "ignored";
      if (c == "start_time" || c == "stop_time") use = "presentation window";
      if (c == column) use = "/stimulus_id (dense) and /image_source_id";
      info.variables.push_back({table + "/" + c, sh.dims, dtype_text(sh), -1, -1, use});
    }
    if (column.empty()) {
      if (!options_.stimulus.empty()) throw InputError(fmt::format("{}: {} has no column '{}'", path_, table, options_.stimulus));
      info.meta.stimulus_id.resize(static_cast<std::size_t>(P));
      for (std::int64_t p = 0; p < P; ++p) info.meta.stimulus_id[static_cast<std::size_t>(p)] = static_cast<std::int32_t>(p);
      L.images = P;
      info.notes.push_back(fmt::format("{} has no stimulus column: every presentation is its own stimulus", table));
    } else {
      const auto sh = h5::shape_of(f, table + "/" + column);
      if (!numeric(sh) || sh.dims.size() != 1 || sh.dims[0] != P) {
        throw InputError(fmt::format("{}: {}/{} is {}, expected {} numbers", path_, table, column, sh.describe(), P));
      }
      const auto v = h5::read_all<double>(f, table + "/" + column);
      std::vector<std::int64_t> keys(v.size());
      for (std::size_t p = 0; p < v.size(); ++p) {
        if (!std::isfinite(v[p]) || v[p] != std::floor(v[p])) {
          throw InputError(fmt::format("{}: {}/{}[{}] = {} is not an integer stimulus id", path_, table, column, p, v[p]));
        }
        keys[p] = static_cast<std::int64_t>(v[p]);
      }
      info.image_source_id = dense_stimulus_ids(keys, {}, info.meta.stimulus_id);
      L.images = static_cast<std::int64_t>(info.image_source_id.size());
    }
    info.meta.presentation_time = start;
    if (!segmentation.empty()) read_centroids(f, segmentation, rois, info);
    return info;
  }

 private:
  void read_centroids(const h5::File& f, const std::string& seg, std::int64_t rois, SourceInfo& info) const {
    const std::string mask = seg + "/image_mask";
    if (!h5::exists(f, mask)) {
      info.notes.push_back(fmt::format("{} has no image_mask (pixel masks are not read): no positions", seg));
      return;
    }
    const auto sh = h5::shape_of(f, mask);
    info.variables.push_back({mask, sh.dims, dtype_text(sh), -1, -1, "/neurons/position (weighted centroid x, y in pixels; z = 0)"});
    if (sh.dims.size() != 3 || sh.dims[0] != rois || !numeric(sh)) {
      info.notes.push_back(fmt::format("{} is {}, not {} ROI masks: no positions", mask, sh.describe(), rois));
      return;
    }
    const std::int64_t H = sh.dims[1], W = sh.dims[2];
    const std::int64_t per = std::max<std::int64_t>(1, (64ll << 20) / std::max<std::int64_t>(1, 4 * H * W));
    info.positions.assign(static_cast<std::size_t>(3 * rois), 0.0);
    std::vector<float> buf;
    for (std::int64_t r0 = 0; r0 < rois; r0 += per) {
      const std::int64_t r1 = std::min(rois, r0 + per);
      buf.resize(static_cast<std::size_t>((r1 - r0) * H * W));
      h5::read_block<float>(f, mask, {r0, 0, 0}, {r1 - r0, H, W}, buf);
      for (std::int64_t r = r0; r < r1; ++r) {
        double sw = 0, sx = 0, sy = 0;
        const float* m = buf.data() + (r - r0) * H * W;
        for (std::int64_t y = 0; y < H; ++y)
          for (std::int64_t x = 0; x < W; ++x) {
            const double w = m[y * W + x];
            sw += w;
            sx += w * static_cast<double>(x);
            sy += w * static_cast<double>(y);
          }
        info.positions[static_cast<std::size_t>(3 * r)] = sw > 0 ? sx / sw : std::nan("");
        info.positions[static_cast<std::size_t>(3 * r + 1)] = sw > 0 ? sy / sw : std::nan("");
      }
    }
    info.layout.positions = true;
  }

  std::string path_;
  ImportOptions options_;
};

}  // namespace

std::unique_ptr<Importer> make_nwb_importer(const std::string& path, const ImportOptions& options) {
  return std::make_unique<NwbImporter>(path, options);
}

}  // namespace popcode
