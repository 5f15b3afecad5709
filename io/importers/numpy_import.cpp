// NumPy inputs: a plain .npy matrix, an .npz archive (e.g. Neuromatch W3D4_stringer_oribinned1.npz: `resp`
// stimuli x neurons, `stimuli` in degrees), or numpy's pickled dict-of-arrays .npy (Neuromatch
// stringer_orientations.npy / stringer_spontaneous.npy: `sresp` neurons x stimuli, `istim` radians, `xyz`
// 3 x neurons), all read natively (io/npy, io/npz, io/pickle; nothing is executed).
//
// Which variable is what: the known names above; otherwise --responses NAME and --stimulus NAME, and
// --neurons-axis 0|1 for the orientation of the matrix (default 1: presentations x neurons, popcode's own).
// Stimuli: integer ids give images (dense ids in increasing order, the source id kept in /image_source_id);
// angles (`istim` in radians, `stimuli` in degrees) go to /orientation and every presentation is its own
// stimulus. A pickled file without stimuli (spontaneous activity) imports with every presentation marked
// gray screen.
//
// Reading: uncompressed arrays (.npy, stored .npz members) are read by every rank at its own offsets;
// deflated .npz members and pickled dicts are decoded by rank 0 (the whole array as float64, then a float32
// copy) and scattered.
#include <fmt/format.h>
#include <zip.h>

#include <algorithm>
#include <cmath>
#include <numbers>

#include "io/importers/formats.hpp"
#include "io/npy.hpp"
#include "io/npz.hpp"
#include "io/recording.hpp"

namespace popcode {
namespace {

bool known_neurons_first(const std::string& name) { return name == "sresp"; }

class NumpyImporter final : public Importer {
 public:
  NumpyImporter(std::string path, ImportOptions options) : path_(std::move(path)), options_(std::move(options)) {}

  SourceInfo describe() override {
    SourceInfo info;
    const std::string kind = options_.format == "npy" || options_.format == "npz" ? options_.format : detect_format(path_);
    if (kind == "npz") {
      describe_npz(info);
    } else if (kind == "npy") {
      describe_npy(info);
    } else {
      throw InputError(fmt::format("{}: not a .npy or .npz file (no \\x93NUMPY or zip magic)", path_));
    }
    auto& L = info.layout;
    L.source = fmt::format("{} ({})", path_, info.format);
    L.units = "as stored";
    return info;
  }

  std::vector<float> load_whole(const BulkInfo& b) override {
    const NpyArray& a = whole_.at(b.variable);
    const std::int64_t rows = b.rows, n = b.neurons;
    std::vector<float> out(static_cast<std::size_t>(rows * n));
    // NpyArray values are C order: element (i, j) of the stored 2-D array at i*cols + j.
    for (std::int64_t j = 0; j < n; ++j)
      for (std::int64_t r = 0; r < rows; ++r) {
        const std::size_t src = b.neurons_first ? static_cast<std::size_t>(j * rows + r) : static_cast<std::size_t>(r * n + j);
        out[static_cast<std::size_t>(j * rows + r)] = static_cast<float>(a.values[src]);
      }
    whole_.erase(b.variable);
    return out;
  }

 private:
  // Orientation of a 2-D responses array: true when stored neurons x presentations.
  bool neurons_first(const std::string& name) const {
    if (options_.neurons_axis == "0") return true;
    if (options_.neurons_axis == "1") return false;
    if (options_.neurons_axis != "auto") throw UsageError(fmt::format("--neurons-axis {}: expected 0, 1 or auto", options_.neurons_axis));
    return known_neurons_first(name);
  }

  void set_responses(SourceInfo& info, const std::string& name, const std::vector<std::int64_t>& shape, BulkInfo b) {
    if (shape.size() != 2) {
      throw InputError(fmt::format("{}: '{}' has shape ({}), expected a 2-D matrix of responses", path_, name, shape_text(shape)));
    }
    const bool nf = neurons_first(name);
    b.neurons_first = nf ? 1 : 0;
    b.rows = nf ? shape[1] : shape[0];
    b.neurons = nf ? shape[0] : shape[1];
    b.variable = name;
    if (b.rows == 0 || b.neurons == 0) throw InputError(fmt::format("{}: '{}' is empty ({})", path_, name, shape_text(shape)));
    info.layout.presentations = b.rows;
    info.layout.neurons = b.neurons;
    info.responses = std::move(b);
    info.notes.push_back(fmt::format("'{}' read as {} x {} ({})", name, nf ? "neurons" : "presentations",
                                     nf ? "presentations" : "neurons",
                                     options_.neurons_axis == "auto" ? "default for this name; --neurons-axis changes it" : "--neurons-axis"));
  }

  // Stimulus of each presentation from a 1-D array: angles or integer image ids.
  void set_stimuli(SourceInfo& info, const std::string& name, const NpyArray& a) {
    const std::int64_t P = info.layout.presentations;
    require_same_length(path_, "'" + name + "'", static_cast<std::int64_t>(a.values.size()), "'" + info.responses.variable + "'", P);
    const bool degrees = name == "stimuli";
    const bool radians = name == "istim" && std::any_of(a.values.begin(), a.values.end(), [](double v) { return v != std::floor(v); });
    if (degrees || radians) {
      info.meta.orientation.resize(a.values.size());
      for (std::size_t p = 0; p < a.values.size(); ++p) {
        if (!std::isfinite(a.values[p])) throw InputError(fmt::format("{}: '{}'[{}] is {}", path_, name, p, a.values[p]));
        info.meta.orientation[p] = degrees ? a.values[p] * (std::numbers::pi / 180.0) : a.values[p];
      }
      each_presentation_own_stimulus(info);
      info.notes.push_back(fmt::format("'{}' holds orientations ({}): stored in /orientation in radians; every presentation "
                                       "is its own stimulus",
                                       name, degrees ? "degrees" : "radians"));
      return;
    }
    std::vector<std::int64_t> keys(a.values.size());
    for (std::size_t p = 0; p < keys.size(); ++p) {
      if (!std::isfinite(a.values[p]) || std::fabs(a.values[p]) > 9e15) {
        throw InputError(fmt::format("{}: '{}'[{}] = {} is not an image id", path_, name, p, a.values[p]));
      }
      keys[p] = static_cast<std::int64_t>(a.values[p]);
    }
    info.image_source_id = dense_stimulus_ids(keys, {}, info.meta.stimulus_id);
    info.layout.images = static_cast<std::int64_t>(info.image_source_id.size());
  }

  static void each_presentation_own_stimulus(SourceInfo& info) {
    const std::int64_t P = info.layout.presentations;
    info.meta.stimulus_id.resize(static_cast<std::size_t>(P));
    for (std::int64_t p = 0; p < P; ++p) info.meta.stimulus_id[static_cast<std::size_t>(p)] = static_cast<std::int32_t>(p);
    info.layout.images = P;
  }

  void set_positions(SourceInfo& info, const NpyArray& xyz) {
    const std::int64_t N = info.layout.neurons;
    if (xyz.shape.size() != 2 || !((xyz.shape[0] == 3 && xyz.shape[1] == N) || (xyz.shape[0] == N && xyz.shape[1] == 3))) {
      info.notes.push_back(fmt::format("'xyz' has shape ({}), not 3 x {}: positions not imported", shape_text(xyz.shape), N));
      return;
    }
    const bool three_first = xyz.shape[0] == 3 && !(xyz.shape[1] == 3 && N == 3);
    info.positions.resize(static_cast<std::size_t>(3 * N));
    for (std::int64_t i = 0; i < N; ++i)
      for (std::int64_t c = 0; c < 3; ++c)
        info.positions[static_cast<std::size_t>(3 * i + c)] =
            three_first ? xyz.values[static_cast<std::size_t>(c * N + i)] : xyz.values[static_cast<std::size_t>(3 * i + c)];
    info.layout.positions = true;
  }

  void finish_stimuli(SourceInfo& info, const std::string& stim_name, const NpyArray* stim) {
    if (stim != nullptr) {
      set_stimuli(info, stim_name, *stim);
    } else if (!options_.stimulus.empty()) {
      throw InputError(fmt::format("{}: no variable '{}' (--stimulus)", path_, options_.stimulus));
    } else {
      each_presentation_own_stimulus(info);
      info.notes.push_back("no stimulus variable: every presentation is its own stimulus (use --stimulus NAME)");
    }
  }

  static std::string type_of(const NpyArray& a) { return a.dtype.empty() ? "object" : a.dtype; }

  void describe_npy(SourceInfo& info) {
    const NpyHeader h = read_npy_header(path_);
    if (h.kind != 'O') {
      info.format = "npy";
      info.variables.push_back({"(array)", h.shape, h.dtype, -1, -1, "/responses"});
      if (h.kind == 'U' || h.kind == 'S') throw InputError(fmt::format("{}: holds strings ({}), not responses", path_, h.dtype));
      BulkInfo b;
      b.kind = BulkInfo::raw_file;
      b.file = path_;
      b.dtype = h.dtype;
      b.offset = h.data_offset;
      b.fortran_order = h.fortran_order ? 1 : 0;
      set_responses(info, "(array)", h.shape, b);
      if (!options_.stimulus.empty()) {
        const NpyArray ids = read_npy(options_.stimulus);
        set_stimuli(info, options_.stimulus, ids);
      } else {
        finish_stimuli(info, "", nullptr);
      }
      return;
    }
    // numpy's pickled dict of arrays.
    info.format = "npy-pickled-dict";
    NpyFile file = read_npy_file(path_);
    if (!file.is_dict) throw InputError(fmt::format("{}: an object array that is not a dict of arrays", path_));
    std::map<std::string, NpyArray>& d = file.dict;
    const std::string resp = !options_.responses.empty() ? options_.responses : d.count("sresp") ? "sresp" : "";
    const std::string stim = !options_.stimulus.empty() ? options_.stimulus : d.count("istim") ? "istim" : "";
    for (const auto& [k, a] : d) {
      std::string use = "ignored: not used by popcode";
      if (k == resp) use = "/responses";
      else if (k == stim) use = "stimulus of each presentation";
      else if (k == "xyz") use = "/neurons/position";
      else if (k == "run" || k == "pupilArea" || k == "pupilCOM" || k == "beh_svd_time") use = "ignored: behaviour (not stored in v1 recordings)";
      info.variables.push_back({k, a.shape, type_of(a), -1, -1, use});
    }
    if (resp.empty() || !d.count(resp)) {
      std::string keys;
      for (const auto& [k, a] : d) keys += (keys.empty() ? "" : ", ") + k;
      throw InputError(fmt::format("{}: dict has no responses '{}' (keys: {}); name them with --responses",
                                   path_, resp.empty() ? "sresp" : resp, keys));
    }
    if (!d[resp].strings.empty()) throw InputError(fmt::format("{}: '{}' holds strings", path_, resp));
    BulkInfo b;
    b.kind = BulkInfo::root_scatter;
    set_responses(info, resp, d[resp].shape, b);
    if (static_cast<std::int64_t>(d[resp].values.size()) != info.layout.presentations * info.layout.neurons) {
      throw InputError(fmt::format("{}: '{}' holds {} values for shape ({})", path_, resp, d[resp].values.size(), shape_text(d[resp].shape)));
    }
    if (d.count("xyz")) set_positions(info, d["xyz"]);
    if (!stim.empty() && d.count(stim)) {
      set_stimuli(info, stim, d[stim]);
    } else if (stim.empty()) {
      info.meta.stimulus_id.assign(static_cast<std::size_t>(info.layout.presentations), kGrayScreenId);
      info.layout.images = 0;
      info.notes.push_back("no stimulus variable: a spontaneous-activity recording; every time point is stored as a "
                           "gray-screen presentation");
    } else {
      throw InputError(fmt::format("{}: no variable '{}' (--stimulus)", path_, stim));
    }
    whole_.emplace(resp, std::move(d[resp]));
  }

  void describe_npz(SourceInfo& info) {
    info.format = "npz";
    const std::vector<NpzMember> members = list_npz(path_);
    const std::string resp = !options_.responses.empty() ? options_.responses : "resp";
    const std::string stim = !options_.stimulus.empty() ? options_.stimulus : "stimuli";
    const NpzMember* r = nullptr;
    const NpzMember* s = nullptr;
    for (const NpzMember& m : members) {
      std::string use = "ignored: not used by popcode";
      if (m.name == resp) {
        r = &m;
        use = "/responses";
      } else if (m.name == stim) {
        s = &m;
        use = "stimulus of each presentation";
      } else if (m.name == "xyz") {
        use = "/neurons/position";
      }
      info.variables.push_back({m.name, m.header.shape, m.header.dtype + (m.compressed ? " (deflated)" : ""), -1, -1, use});
    }
    if (r == nullptr) {
      std::string names;
      for (const auto& m : members) names += (names.empty() ? "" : ", ") + m.name;
      throw InputError(fmt::format("{}: no member '{}' (members: {}); name the responses with --responses", path_, resp,
                                   names.empty() ? "none" : names));
    }
    if (r->header.kind == 'U' || r->header.kind == 'S' || r->header.kind == 'O') {
      throw InputError(fmt::format("{}: member '{}' has dtype {}, expected numbers", path_, resp, r->header.dtype));
    }
    BulkInfo b;
    if (!r->compressed) {
      b.kind = BulkInfo::raw_file;
      b.file = path_;
      b.dtype = r->header.dtype;
      b.offset = r->data_file_offset;
      b.fortran_order = r->header.fortran_order ? 1 : 0;
      b.check_crc = 1;
      b.crc = member_crc(resp + ".npy");
      b.crc_begin = r->data_file_offset - r->header.data_offset;
      b.crc_length = r->uncompressed_size;
    } else {
      b.kind = BulkInfo::root_scatter;
      info.notes.push_back(fmt::format("member '{}' is deflated: rank 0 decompresses it and scatters neuron blocks", resp));
    }
    set_responses(info, resp, r->header.shape, b);
    if (r->compressed) whole_.emplace(resp, read_npz_member(path_, resp));
    const NpzMember* xyz = nullptr;
    for (const NpzMember& m : members)
      if (m.name == "xyz") xyz = &m;
    if (xyz != nullptr) set_positions(info, read_npz_member(path_, "xyz"));
    if (s != nullptr) {
      const NpyArray a = read_npz_member(path_, stim);
      finish_stimuli(info, stim, &a);
    } else {
      finish_stimuli(info, stim, nullptr);
    }
  }

  // The CRC-32 the zip directory records for a member.
  std::uint32_t member_crc(const std::string& member) const {
    int err = 0;
    zip_t* z = zip_open(path_.c_str(), ZIP_RDONLY, &err);
    if (z == nullptr) throw InputError(fmt::format("{}: not a readable zip archive (libzip error {})", path_, err));
    zip_stat_t st;
    zip_stat_init(&st);
    const int rc = zip_stat(z, member.c_str(), 0, &st);
    zip_discard(z);
    if (rc != 0 || !(st.valid & ZIP_STAT_CRC)) throw InputError(fmt::format("{}: member '{}' has no CRC record", path_, member));
    return st.crc;
  }

  std::string path_;
  ImportOptions options_;
  std::map<std::string, NpyArray> whole_;  // rank 0: arrays decoded in describe(), handed out by load_whole
};

}  // namespace

std::unique_ptr<Importer> make_numpy_importer(const std::string& path, const ImportOptions& options) {
  return std::make_unique<NumpyImporter>(path, options);
}

}  // namespace popcode
