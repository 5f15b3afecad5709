// Stringer et al. 2019 MAT files (figshare 6845348) through matio: MATLAB v5 (zlib-compressed elements) and
// v7.3 (HDF5 with a 512-byte user block).
//
// Variables used (SCIENCE.md, "Data the users have"):
//   stim.resp   presentations x neurons   -> /responses
//   stim.istim  1-based image id per presentation; with --gray max (default) the largest id is the gray
//               screen -> stimulus_id = istim - 1, gray -> -1, n_images = max - 1 (ids keep their meaning, so
//               image k of the images file and class label k stay aligned even if an image was never shown)
//   stim.spont  timepoints x neurons     -> /spontaneous
//   stim.ori    orientation per presentation (orientation sets), degrees -> /orientation in radians
//   med         neurons x 3 cell positions (um), columns as stored -> /neurons/position
//   stat(i).redcell (or stat.redcell as a vector) -> /neurons/gad_positive
// plus, from separate files: images_natimg2800_all.mat (`imgs` height x width x images) -> /images (values as
// stored; the RF stage normalises), and stimuli_class_assignment*.mat (`class_assignment`, `class_names`).
//
// Reading: v5 elements are compressed, so rank 0 inflates `stim` whole and scatters neuron blocks. Memory on
// rank 0: the float64 matrices of `stim` as matio holds them (8 bytes x presentations x neurons, plus the
// same for spont) and one float32 copy of the matrix being scattered. v7.3 files are HDF5: rank 0 reads the
// small datasets and the ranks read their neuron blocks of /stim/resp and /stim/spont in parallel (MATLAB
// writes arrays transposed, so there they are stored neurons x presentations).
#include <matio.h>

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <numbers>
#include <optional>

#include "io/h5.hpp"
#include "io/importers/formats.hpp"
#include "io/recording.hpp"

namespace popcode {
namespace {

// matio reports problems through a log callback; keep the last message for our own errors.
thread_local std::string g_matio_message;
void matio_log(int, char* message) {
  if (message != nullptr) g_matio_message = message;
}
void quiet_matio() {
  static bool done = false;
  if (!done) {
    Mat_LogInitFunc("popcode", matio_log);
    done = true;
  }
}
std::string matio_reason() { return g_matio_message.empty() ? "" : " (matio: " + g_matio_message + ")"; }

struct VarDeleter {
  void operator()(matvar_t* v) const { Mat_VarFree(v); }
};
using Var = std::unique_ptr<matvar_t, VarDeleter>;

double claimed_bytes(const matvar_t* v, int depth);

class MatFile {
 public:
  explicit MatFile(const std::string& path) : path_(path) {
    quiet_matio();
    g_matio_message.clear();
    // Only v5 and v7.3 files are read: their 128-byte header ends with the version (0x0100 or 0x0200) and the
    // endian indicator. Anything else is refused here, before matio tries other layouts (v4) whose headers
    // it trusts for allocation sizes.
    unsigned char head[128] = {};
    std::FILE* fh = std::fopen(path.c_str(), "rb");
    const std::size_t got = fh ? std::fread(head, 1, sizeof head, fh) : 0;
    if (fh) std::fclose(fh);
    const bool le = head[126] == 'I' && head[127] == 'M', be = head[126] == 'M' && head[127] == 'I';
    const unsigned version = le ? head[124] | (head[125] << 8) : (head[124] << 8) | head[125];
    if (got < 128 || !(le || be) || (version != 0x0100 && version != 0x0200)) {
      throw InputError(fmt::format("{}: not a readable MAT file: no MATLAB v5/v7.3 header{}", path,
                                   got < 128 ? fmt::format(" (the file has {} bytes)", got) : ""));
    }
    mat_ = Mat_Open(path.c_str(), MAT_ACC_RDONLY);
    if (mat_ == nullptr) throw InputError(fmt::format("{}: not a readable MAT file{}", path, matio_reason()));
  }
  ~MatFile() {
    if (mat_ != nullptr) Mat_Close(mat_);
  }
  MatFile(const MatFile&) = delete;
  MatFile& operator=(const MatFile&) = delete;
  mat_t* get() const { return mat_; }
  const std::string& path() const { return path_; }
  bool v73() const { return Mat_GetVersion(mat_) == MAT_FT_MAT73; }

  // Names, shapes and classes of the top-level variables (headers only).
  std::vector<Var> infos() const {
    std::vector<Var> out;
    Mat_Rewind(mat_);
    g_matio_message.clear();
    for (int guard = 0; guard < 100000; ++guard) {
      matvar_t* v = Mat_VarReadNextInfo(mat_);
      if (v == nullptr) break;
      out.emplace_back(v);
    }
    if (!g_matio_message.empty()) {
      throw InputError(fmt::format("{}: unreadable after {} variable(s): truncated or corrupt{}", path_, out.size(), matio_reason()));
    }
    return out;
  }
  // Whole variable, or null when absent. The header is checked first: a variable whose dimensions claim
  // more data than the file could hold even at deflate's maximum ratio (1032:1) is refused before matio
  // allocates for it.
  // `listed` is the variable's header from infos(), when the caller has it: a compressed variable's header
  // costs a pass of inflate over the whole variable, so reusing it saves one of the two passes.
  Var read(const std::string& name, const matvar_t* listed = nullptr) const {
    g_matio_message.clear();
    {
      Var fresh(listed == nullptr ? Mat_VarReadInfo(mat_, name.c_str()) : nullptr);
      const matvar_t* info = listed != nullptr ? listed : fresh.get();
      if (info == nullptr) return nullptr;
      std::error_code ec;
      const double file_bytes = static_cast<double>(std::filesystem::file_size(path_, ec));
      const double claimed = claimed_bytes(info, 0);
      if (claimed > 1032.0 * file_bytes + (1 << 20)) {
        throw InputError(fmt::format("{}: variable '{}' claims {:.0f} bytes of data, more than a {:.0f}-byte file can hold",
                                     path_, name, claimed, file_bytes));
      }
    }
    Var v(Mat_VarRead(mat_, name.c_str()));
    if (!g_matio_message.empty()) {
      throw InputError(fmt::format("{}: variable '{}' could not be read{}", path_, name, matio_reason()));
    }
    return v;
  }

 private:
  std::string path_;
  mat_t* mat_ = nullptr;
};

std::vector<std::int64_t> dims_of(const matvar_t* v) {
  std::vector<std::int64_t> d;
  for (int i = 0; i < v->rank; ++i) d.push_back(static_cast<std::int64_t>(v->dims[i]));
  return d;
}

std::int64_t numel(const matvar_t* v) {
  std::int64_t n = 1;
  for (int i = 0; i < v->rank; ++i) n *= static_cast<std::int64_t>(v->dims[i]);
  return n;
}

std::string class_name(const matvar_t* v) {
  switch (v->class_type) {
    case MAT_C_DOUBLE: return "double";
    case MAT_C_SINGLE: return "single";
    case MAT_C_INT8: return "int8";
    case MAT_C_UINT8: return v->isLogical ? "logical" : "uint8";
    case MAT_C_INT16: return "int16";
    case MAT_C_UINT16: return "uint16";
    case MAT_C_INT32: return "int32";
    case MAT_C_UINT32: return "uint32";
    case MAT_C_INT64: return "int64";
    case MAT_C_UINT64: return "uint64";
    case MAT_C_CHAR: return "char";
    case MAT_C_CELL: return "cell";
    case MAT_C_STRUCT: return "struct";
    case MAT_C_SPARSE: return "sparse";
    default: return "other";
  }
}

bool is_numeric(const matvar_t* v) {
  return v != nullptr && v->class_type != MAT_C_CHAR && v->class_type != MAT_C_CELL && v->class_type != MAT_C_STRUCT &&
         v->class_type != MAT_C_SPARSE && v->class_type != MAT_C_OBJECT && v->class_type != MAT_C_FUNCTION &&
         v->class_type != MAT_C_EMPTY && v->class_type != MAT_C_OPAQUE;
}

// Numeric contents as double (column-major, as MATLAB stores them). Checks the buffer matio filled.
template <typename Out>
std::vector<Out> values_of(const std::string& file, const std::string& name, const matvar_t* v) {
  if (!is_numeric(v)) {
    throw InputError(fmt::format("{}: {} is a {} {}, expected a numeric array", file, name, class_name(v), shape_text(dims_of(v))));
  }
  if (v->isComplex) throw InputError(fmt::format("{}: {} is complex; popcode reads real arrays", file, name));
  const std::int64_t n = numel(v);
  std::size_t item = 0;
  switch (v->data_type) {
    case MAT_T_DOUBLE: case MAT_T_INT64: case MAT_T_UINT64: item = 8; break;
    case MAT_T_SINGLE: case MAT_T_INT32: case MAT_T_UINT32: item = 4; break;
    case MAT_T_INT16: case MAT_T_UINT16: item = 2; break;
    case MAT_T_INT8: case MAT_T_UINT8: item = 1; break;
    default: throw InputError(fmt::format("{}: {} has storage type {} that popcode does not read", file, name, int(v->data_type)));
  }
  if (n > 0 && (v->data == nullptr || v->nbytes < static_cast<std::size_t>(n) * item)) {
    throw InputError(fmt::format("{}: {} ({} {}) holds {} bytes of data, fewer than its shape needs", file, name,
                                 class_name(v), shape_text(dims_of(v)), v->nbytes));
  }
  std::vector<Out> out(static_cast<std::size_t>(n));
  const auto convert = [&](auto* p) {
    for (std::int64_t i = 0; i < n; ++i) out[static_cast<std::size_t>(i)] = static_cast<Out>(p[i]);
  };
  switch (v->data_type) {
    case MAT_T_DOUBLE: convert(static_cast<const double*>(v->data)); break;
    case MAT_T_SINGLE: convert(static_cast<const float*>(v->data)); break;
    case MAT_T_INT64: convert(static_cast<const std::int64_t*>(v->data)); break;
    case MAT_T_UINT64: convert(static_cast<const std::uint64_t*>(v->data)); break;
    case MAT_T_INT32: convert(static_cast<const std::int32_t*>(v->data)); break;
    case MAT_T_UINT32: convert(static_cast<const std::uint32_t*>(v->data)); break;
    case MAT_T_INT16: convert(static_cast<const std::int16_t*>(v->data)); break;
    case MAT_T_UINT16: convert(static_cast<const std::uint16_t*>(v->data)); break;
    case MAT_T_INT8: convert(static_cast<const std::int8_t*>(v->data)); break;
    case MAT_T_UINT8: convert(static_cast<const std::uint8_t*>(v->data)); break;
    default: break;
  }
  return out;
}

// A MATLAB char array as UTF-8 (row vector; 2-D char matrices are read row by row and joined).
std::string string_of(const std::string& file, const std::string& name, const matvar_t* v) {
  if (v == nullptr || v->class_type != MAT_C_CHAR) {
    throw InputError(fmt::format("{}: {} is {}, expected a char array", file, name, v ? class_name(v) : "missing"));
  }
  const std::int64_t n = numel(v);
  std::string s;
  if (n == 0) return s;
  const bool wide = v->data_type == MAT_T_UINT16 || v->data_type == MAT_T_UTF16;
  const std::size_t item = wide ? 2 : 1;
  if (v->data == nullptr || v->nbytes < static_cast<std::size_t>(n) * item) {
    throw InputError(fmt::format("{}: {} holds fewer characters than its shape says", file, name));
  }
  for (std::int64_t i = 0; i < n; ++i) {
    const unsigned cp = wide ? static_cast<const std::uint16_t*>(v->data)[i] : static_cast<const std::uint8_t*>(v->data)[i];
    if (cp < 0x80) {
      s += static_cast<char>(cp);
    } else if (cp < 0x800) {
      s += static_cast<char>(0xC0 | (cp >> 6));
      s += static_cast<char>(0x80 | (cp & 0x3F));
    } else {
      s += static_cast<char>(0xE0 | (cp >> 12));
      s += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
      s += static_cast<char>(0x80 | (cp & 0x3F));
    }
  }
  while (!s.empty() && (s.back() == ' ' || s.back() == '\0')) s.pop_back();
  return s;
}

// Bytes of data a variable's header claims (numel x element size, summed over struct fields and cells).
double claimed_bytes(const matvar_t* v, int depth) {
  if (v == nullptr || depth > 16) return 0;
  double n = 1;
  for (int i = 0; i < v->rank; ++i) n *= static_cast<double>(v->dims[i]);
  if (v->class_type == MAT_C_STRUCT || v->class_type == MAT_C_CELL) {
    double total = n * 8;  // at least a pointer per element
    if (v->class_type == MAT_C_CELL && v->data != nullptr) {
      const std::size_t cells = v->nbytes / sizeof(matvar_t*);
      for (std::size_t i = 0; i < cells && i < 100000; ++i) total += claimed_bytes(static_cast<matvar_t**>(v->data)[i], depth + 1);
    } else if (v->class_type == MAT_C_STRUCT && v->data != nullptr) {
      const std::size_t fields = v->nbytes / sizeof(matvar_t*);
      for (std::size_t i = 0; i < fields && i < 100000; ++i) total += claimed_bytes(static_cast<matvar_t**>(v->data)[i], depth + 1);
    }
    return total;
  }
  const std::size_t item = Mat_SizeOfClass(v->class_type);
  return n * static_cast<double>(item == 0 ? 1 : item) * (v->isComplex ? 2 : 1);
}

class MatImporter final : public Importer {
 public:
  MatImporter(std::string path, ImportOptions options) : path_(std::move(path)), options_(std::move(options)) {}

  SourceInfo describe() override {
    SourceInfo info;
    {
      MatFile probe(path_);
      v73_ = probe.v73();
    }
    info.format = v73_ ? "mat-v7.3" : "mat-v5";
    if (v73_) {
      h5_ = std::make_unique<h5::File>(h5::File::open(path_, h5::Access::read_only, ExitCode::bad_input));
    } else {
      mat_ = std::make_unique<MatFile>(path_);
    }
    const std::string resp_name = options_.responses.empty() ? "resp" : options_.responses;
    const std::string stim_name = options_.stimulus.empty() ? "istim" : options_.stimulus;
    // Top-level variables for inspect.
    bool have_stim = false;
    for (const Field& v : top_level()) {
      std::string use = "ignored: not used by popcode";
      if (v.name == "stim") {
        have_stim = true;
        use = "struct of the recording: fields listed below";
      } else if (v.name == "med") {
        use = "/neurons/position (columns as stored)";
      } else if (v.name == "stat") {
        use = v73_ ? "ignored: Suite2p stats (redcell is read from v5 files only)" : "per-cell Suite2p stats: only redcell is used";
      }
      info.variables.push_back({v.name, v.dims, v.cls, -1, -1, use});
    }
    if (!have_stim) {
      throw InputError(fmt::format("{}: no variable 'stim'; a Stringer et al. recording holds stim.resp, stim.istim and "
                                   "stim.spont (found: {})",
                                   path_, variable_names(info)));
    }
    load_stim();
    for (const Field& f : fields_) {
      std::string use = "ignored: not used by popcode";
      if (f.name == resp_name) use = "/responses (presentations x neurons)";
      else if (f.name == stim_name) use = "/stimulus_id (1-based image ids; " + options_.gray + " = gray screen)";
      else if (f.name == "spont") use = "/spontaneous (time points x neurons)";
      else if (f.name == "ori") use = "/orientation (degrees -> radians)";
      info.variables.push_back({"stim." + f.name, f.dims, f.cls, -1, -1, use});
    }
    const Field* resp = field(resp_name, true);
    const auto rd = resp->dims;
    if (rd.size() != 2 || !resp->numeric) {
      throw InputError(fmt::format("{}: stim.{} is {} {}, expected a numeric presentations x neurons matrix", path_, resp_name,
                                   resp->cls, shape_text(rd)));
    }
    // v7.3 stores the MATLAB array transposed; Field::dims are MATLAB's dimensions either way.
    const std::int64_t P = rd[0], N = rd[1];
    if (P == 0 || N == 0) throw InputError(fmt::format("{}: stim.{} is empty ({})", path_, resp_name, shape_text(rd)));
    auto& L = info.layout;
    L.presentations = P;
    L.neurons = N;
    L.source = fmt::format("{} (Stringer et al. 2019 MAT file)", path_);
    L.subject = "";
    L.session = "";
    L.units = "deconvolved fluorescence (Suite2p), as stored";
    info.responses = bulk(resp_name, P, N);

    // Stimulus ids.
    const auto keys = values(*field(stim_name, true));
    require_same_length(path_, "stim." + stim_name, static_cast<std::int64_t>(keys.size()), "stim." + resp_name, P);
    double maxid = 0;
    for (std::size_t p = 0; p < keys.size(); ++p) {
      const double k = keys[p];
      if (!(k >= 1) || k != std::floor(k) || k > 1e9) {
        throw InputError(fmt::format("{}: stim.{}[{}] = {}: image ids must be whole numbers >= 1 (MATLAB 1-based)", path_,
                                     stim_name, p + 1, k));
      }
      maxid = std::max(maxid, k);
    }
    const bool gray_max = options_.gray == "max";
    if (!gray_max && options_.gray != "none") throw UsageError(fmt::format("--gray {}: expected max or none", options_.gray));
    L.images = static_cast<std::int64_t>(maxid) - (gray_max ? 1 : 0);
    info.meta.stimulus_id.resize(keys.size());
    std::int64_t gray = 0;
    for (std::size_t p = 0; p < keys.size(); ++p) {
      const bool is_gray = gray_max && keys[p] == maxid;
      gray += is_gray;
      info.meta.stimulus_id[p] = is_gray ? kGrayScreenId : static_cast<std::int32_t>(keys[p] - 1);
    }
    if (gray_max) {
      info.notes.push_back(fmt::format("stim.{} = {} (the largest id) is the gray screen: {} presentations", stim_name,
                                       static_cast<std::int64_t>(maxid), gray));
    }
    if (L.images == 0) throw InputError(fmt::format("{}: stim.{} holds only gray-screen presentations", path_, stim_name));

    if (const Field* spont = field("spont", false)) {
      const auto sd = spont->dims;
      if (sd.size() != 2 || sd[1] != N || !spont->numeric) {
        throw InputError(fmt::format("{}: stim.spont is {} {}, expected time points x {} neurons", path_, spont->cls,
                                     shape_text(sd), N));
      }
      if (sd[0] > 0) {
        L.spont_timepoints = sd[0];
        info.spontaneous = bulk("spont", sd[0], N);
      }
    } else {
      info.notes.push_back("no stim.spont: preprocessing cannot remove spontaneous PCs");
    }
    if (const Field* ori = field("ori", false)) {
      const auto deg = values(*ori);
      require_same_length(path_, "stim.ori", static_cast<std::int64_t>(deg.size()), "stim." + resp_name, P);
      info.meta.orientation.resize(deg.size());
      for (std::size_t p = 0; p < deg.size(); ++p) info.meta.orientation[p] = deg[p] * (std::numbers::pi / 180.0);
    }
    if (std::optional<Field> med = top_level_field("med")) {
      const auto md = med->dims;
      if (md.size() != 2 || md[0] != N || md[1] < 2 || !med->numeric) {
        throw InputError(fmt::format("{}: med is {} {}, expected {} neurons x 3 positions", path_, med->cls, shape_text(md), N));
      }
      const auto v = values(*med);
      info.positions.assign(static_cast<std::size_t>(3 * N), 0.0);
      for (std::int64_t i = 0; i < N; ++i)
        for (std::int64_t c = 0; c < std::min<std::int64_t>(3, md[1]); ++c)
          info.positions[static_cast<std::size_t>(3 * i + c)] = v[static_cast<std::size_t>(i + c * N)];
      L.positions = true;
    }
    if (!v73_) {
      if (Var stat = read_top("stat")) read_redcell(stat.get(), N, info);
    }
    if (!options_.images.empty()) describe_images(info);
    if (!options_.classes.empty()) describe_classes(info);
    return info;
  }

  std::vector<float> load_whole(const BulkInfo& b) override {
    // v5 only (v7.3 bulk arrays are read in parallel from HDF5). Neuron-major = MATLAB's column-major.
    const Field* f = field(b.variable.substr(b.variable.find('.') + 1), true);
    return values_of<float>(path_, b.variable, f->var);
  }

  std::vector<float> load_images() override {
    MatFile mat(options_.images);
    Var imgs = mat.read("imgs");
    const auto d = dims_of(imgs.get());
    const auto v = values_of<float>(options_.images, "imgs", imgs.get());
    const std::int64_t H = d[0], W = d[1], K = images_;
    std::vector<float> out(static_cast<std::size_t>(K * H * W));
    for (std::int64_t k = 0; k < K; ++k)
      for (std::int64_t y = 0; y < H; ++y)
        for (std::int64_t x = 0; x < W; ++x)
          out[static_cast<std::size_t>((k * H + y) * W + x)] = v[static_cast<std::size_t>(y + H * (x + W * k))];
    return out;
  }

 private:
  static std::string variable_names(const SourceInfo& info) {
    std::string s;
    for (const auto& v : info.variables) s += (s.empty() ? "" : ", ") + v.name;
    return s.empty() ? "nothing" : s;
  }

  // A variable or struct field, from matio (v5) or straight from HDF5 (v7.3, where MATLAB's dimensions are
  // the reverse of HDF5's and the class is the MATLAB_class attribute).
  struct Field {
    std::string name, cls;
    std::vector<std::int64_t> dims;
    bool numeric = false;
    const matvar_t* var = nullptr;  // v5
    std::string h5path;             // v7.3
  };

  Field from_h5(const std::string& name, const std::string& path) const {
    Field f;
    f.name = name;
    f.h5path = path;
    H5O_info_t oi;
    if (H5Oget_info_by_name(h5_->id(), path.c_str(), &oi, H5P_DEFAULT) >= 0 && oi.type == H5O_TYPE_GROUP) {
      f.cls = "struct";
      return f;
    }
    const auto sh = h5::shape_of(*h5_, path);
    f.dims.assign(sh.dims.rbegin(), sh.dims.rend());
    f.cls = h5::has_attribute(*h5_, path, "MATLAB_class") ? h5::read_string_attribute(*h5_, path, "MATLAB_class") : "?";
    f.numeric = (sh.type_class == H5T_FLOAT || sh.type_class == H5T_INTEGER) && f.cls != "char" && f.cls != "cell";
    return f;
  }

  static Field from_var(const matvar_t* v) {
    Field f;
    f.name = v->name ? v->name : "?";
    f.dims = dims_of(v);
    f.cls = class_name(v);
    f.numeric = is_numeric(v);
    f.var = v;
    return f;
  }

  std::vector<Field> top_level() {
    std::vector<Field> out;
    if (v73_) {
      for (const std::string& n : h5::list(*h5_, "/"))
        if (n.empty() || n[0] != '#') out.push_back(from_h5(n, "/" + n));
      return out;
    }
    infos_ = mat_->infos();
    for (const Var& v : infos_) out.push_back(from_var(v.get()));
    return out;
  }

  // A top-level variable of a v5 file (null when absent), reusing its header from the listing (see
  // MatFile::read). Matio finds a variable by name by decoding every variable before it, so a name the
  // listing does not hold is answered from the listing, not by another pass over the file.
  Var read_top(const std::string& name) {
    if (infos_.empty()) infos_ = mat_->infos();
    for (const Var& v : infos_) {
      if (v != nullptr && v->name != nullptr && name == v->name) return mat_->read(name, v.get());
    }
    return nullptr;
  }

  std::optional<Field> top_level_field(const std::string& name) {
    if (v73_) {
      if (!h5::exists(*h5_, "/" + name)) return std::nullopt;
      return from_h5(name, "/" + name);
    }
    Var v = read_top(name);
    if (!v) return std::nullopt;
    held_.push_back(std::move(v));
    return from_var(held_.back().get());
  }

  void load_stim() {
    if (v73_) {
      const Field s = from_h5("stim", "/stim");
      if (s.cls != "struct") throw InputError(fmt::format("{}: 'stim' is {}, expected a struct", path_, s.cls));
      for (const std::string& n : h5::list(*h5_, "/stim")) fields_.push_back(from_h5(n, "/stim/" + n));
      return;
    }
    // v5: stim is compressed, so it is read whole (data included) here.
    stim_ = read_top("stim");
    if (stim_ == nullptr || stim_->class_type != MAT_C_STRUCT) {
      throw InputError(fmt::format("{}: 'stim' is {}, expected a struct", path_, stim_ ? class_name(stim_.get()) : "unreadable"));
    }
    if (numel(stim_.get()) != 1) {
      throw InputError(fmt::format("{}: 'stim' is a {} struct array, expected 1 x 1", path_, shape_text(dims_of(stim_.get()))));
    }
    const unsigned nfields = Mat_VarGetNumberOfFields(stim_.get());
    char* const* names = Mat_VarGetStructFieldnames(stim_.get());
    for (unsigned i = 0; i < nfields; ++i) {
      const std::string n = names[i] ? names[i] : "?";
      if (const matvar_t* fv = Mat_VarGetStructFieldByName(stim_.get(), n.c_str(), 0)) {
        Field f = from_var(fv);
        f.name = n;
        fields_.push_back(f);
      }
    }
  }

  const Field* field(const std::string& name, bool required) const {
    for (const Field& f : fields_)
      if (f.name == name) return &f;
    if (required) {
      throw InputError(fmt::format("{}: stim has no field '{}' (use --responses/--stimulus to name other fields)", path_, name));
    }
    return nullptr;
  }

  // Numeric contents in MATLAB's column-major order.
  std::vector<double> values(const Field& f) const {
    const std::string label = f.h5path.empty() ? "stim." + f.name : f.h5path;
    if (!f.numeric) {
      throw InputError(fmt::format("{}: {} is a {} {}, expected a numeric array", path_, label, f.cls, shape_text(f.dims)));
    }
    if (f.var != nullptr) return values_of<double>(path_, label, f.var);
    return h5::read_all<double>(*h5_, f.h5path);
  }

  BulkInfo bulk(const std::string& name, std::int64_t rows, std::int64_t neurons) const {
    BulkInfo b;
    b.rows = rows;
    b.neurons = neurons;
    b.variable = "stim." + name;
    if (v73_) {
      b.kind = BulkInfo::hdf5;
      b.file = path_;
      b.dataset = "/stim/" + name;
      b.neurons_first = 1;  // MATLAB's column-major array seen by HDF5 as neurons x rows
    } else {
      b.kind = BulkInfo::root_scatter;
    }
    return b;
  }

  void read_redcell(const matvar_t* stat, std::int64_t N, SourceInfo& info) const {
    std::vector<double> red;
    if (stat->class_type == MAT_C_STRUCT && numel(stat) == N) {
      for (std::int64_t i = 0; i < N; ++i) {
        const matvar_t* r = Mat_VarGetStructFieldByName(const_cast<matvar_t*>(stat), "redcell", static_cast<std::size_t>(i));
        if (r == nullptr) {
          info.notes.push_back("stat has no redcell field: no GAD+ flags");
          return;
        }
        const auto v = values_of<double>(path_, fmt::format("stat({}).redcell", i + 1), r);
        red.push_back(v.empty() ? 0.0 : v[0]);
      }
    } else if (stat->class_type == MAT_C_STRUCT && numel(stat) == 1) {
      const matvar_t* r = Mat_VarGetStructFieldByName(const_cast<matvar_t*>(stat), "redcell", 0);
      if (r == nullptr) {
        info.notes.push_back("stat has no redcell field: no GAD+ flags");
        return;
      }
      red = values_of<double>(path_, "stat.redcell", r);
      if (static_cast<std::int64_t>(red.size()) != N) {
        throw InputError(fmt::format("{}: stat.redcell has {} entries for {} neurons", path_, red.size(), N));
      }
    } else {
      info.notes.push_back(fmt::format("stat is a {} {} (expected a struct per neuron): no GAD+ flags read", class_name(stat),
                                       shape_text(dims_of(stat))));
      return;
    }
    info.gad.resize(red.size());
    std::int64_t n_red = 0;
    for (std::size_t i = 0; i < red.size(); ++i) {
      info.gad[i] = red[i] != 0 ? 1 : 0;
      n_red += info.gad[i];
    }
    info.layout.gad = true;
    info.notes.push_back(fmt::format("stat.redcell marks {} of {} neurons GAD+ (preprocessing drops them by default)", n_red, N));
  }

  void describe_images(SourceInfo& info) {
    MatFile mat(options_.images);
    std::vector<std::int64_t> d;
    for (const Var& v : mat.infos()) {
      if (v->name && std::string(v->name) == "imgs") {
        d = dims_of(v.get());
        if (!is_numeric(v.get())) throw InputError(fmt::format("{}: imgs is {}, expected numeric", options_.images, class_name(v.get())));
        info.variables.push_back({"imgs (" + options_.images + ")", d, class_name(v.get()), -1, -1, "/images (images x height x width)"});
      }
    }
    if (d.empty()) throw InputError(fmt::format("{}: no variable 'imgs'", options_.images));
    if (d.size() != 3 || d[2] < info.layout.images) {
      throw InputError(fmt::format("{}: imgs is {}, expected height x width x (at least {} images)", options_.images,
                                   shape_text(d), info.layout.images));
    }
    images_ = info.layout.images;
    info.layout.image_height = d[0];
    info.layout.image_width = d[1];
    if (d[2] > images_) info.notes.push_back(fmt::format("imgs holds {} images; the first {} are used", d[2], images_));
  }

  void describe_classes(SourceInfo& info) const {
    MatFile mat(options_.classes);
    Var assign = mat.read("class_assignment");
    Var names = mat.read("class_names");
    if (!assign || !names) {
      throw InputError(fmt::format("{}: expected variables class_assignment and class_names", options_.classes));
    }
    const auto labels = values_of<double>(options_.classes, "class_assignment", assign.get());
    if (static_cast<std::int64_t>(labels.size()) != info.layout.images) {
      throw InputError(fmt::format("{}: class_assignment has {} labels for {} images", options_.classes, labels.size(),
                                   info.layout.images));
    }
    if (names->class_type != MAT_C_CELL) {
      throw InputError(fmt::format("{}: class_names is {}, expected a cell array of strings", options_.classes, class_name(names.get())));
    }
    const std::int64_t k = numel(names.get());
    for (std::int64_t i = 0; i < k; ++i) {
      info.meta.class_names.push_back(string_of(options_.classes, fmt::format("class_names{{{}}}", i + 1),
                                                Mat_VarGetCell(names.get(), static_cast<int>(i))));
    }
    for (double l : labels) {
      if (l < 0 || l >= static_cast<double>(k) || l != std::floor(l)) {
        throw InputError(fmt::format("{}: class_assignment holds {} outside 0..{}", options_.classes, l, k - 1));
      }
      info.meta.class_label.push_back(static_cast<std::int32_t>(l));
    }
    info.variables.push_back({"class_assignment (" + options_.classes + ")", dims_of(assign.get()), class_name(assign.get()), -1, -1, "/classes/label"});
    info.variables.push_back({"class_names (" + options_.classes + ")", dims_of(names.get()), "cell", -1, -1, "/classes/names"});
  }

  std::string path_;
  ImportOptions options_;
  bool v73_ = false;
  std::unique_ptr<MatFile> mat_;     // v5
  std::unique_ptr<h5::File> h5_;     // v7.3
  std::vector<Var> infos_, held_;    // matio variables the Fields point into
  Var stim_;
  std::vector<Field> fields_;
  std::int64_t images_ = 0;
};

}  // namespace

std::unique_ptr<Importer> make_mat_importer(const std::string& path, const ImportOptions& options) {
  return std::make_unique<MatImporter>(path, options);
}

}  // namespace popcode
