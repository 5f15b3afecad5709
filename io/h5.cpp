#include "io/h5.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <filesystem>
#include <numeric>

#include "src/timing.hpp"

namespace popcode::h5 {
namespace {

herr_t innermost(unsigned n, const H5E_error2_t* err, void* data) {
  auto* out = static_cast<std::string*>(data);
  if (n == 0 && err->desc != nullptr) *out = err->desc;
  return 0;
}

// The innermost message of HDF5's error stack, then clears the stack.
std::string stack_message() {
  std::string msg;
  H5Ewalk2(H5E_DEFAULT, H5E_WALK_UPWARD, innermost, &msg);
  H5Eclear2(H5E_DEFAULT);
  return msg;
}

hid_t check_id(hid_t id, const File& file, const std::string& object, const std::string& what) {
  if (id < 0) fail(file, object, what);
  return id;
}

void check(herr_t rc, const File& file, const std::string& object, const std::string& what) {
  if (rc < 0) fail(file, object, what);
}

// Splits "/a/b/c" into prefixes "/a", "/a/b", "/a/b/c".
std::vector<std::string> prefixes(const std::string& path) {
  std::vector<std::string> out;
  for (std::size_t pos = 1; pos <= path.size(); ++pos) {
    if (pos == path.size() || path[pos] == '/') out.push_back(path.substr(0, pos));
  }
  return out;
}

// Collective agreement inside open_parallel/create_parallel, where no Context exists yet.
void agree(MPI_Comm comm, bool failed, const std::string& message, ExitCode code) {
  int rank = 0, size = 1;
  MPI_Comm_rank(comm, &rank);
  MPI_Comm_size(comm, &size);
  int first = failed ? rank : size;
  MPI_Allreduce(MPI_IN_PLACE, &first, 1, MPI_INT, MPI_MIN, comm);
  if (first == size) return;
  long long n = static_cast<long long>(message.size());
  MPI_Bcast(&n, 1, MPI_LONG_LONG, first, comm);
  std::string text = rank == first ? message : std::string(static_cast<std::size_t>(n), '\0');
  if (n > 0) MPI_Bcast(text.data(), static_cast<int>(n), MPI_CHAR, first, comm);
  throw_error(code, text, /*collective=*/true);
}

int comm_rank(MPI_Comm comm) {
  int rank = 0;
  MPI_Comm_rank(comm, &rank);
  return rank;
}

Handle string_type() {
  Handle t(H5Tcopy(H5T_C_S1));
  H5Tset_size(t.id(), H5T_VARIABLE);
  H5Tset_cset(t.id(), H5T_CSET_UTF8);
  return t;
}

bool is_empty(hid_t dataset) {
  Handle space(H5Dget_space(dataset));
  return H5Sget_simple_extent_npoints(space.id()) == 0;
}

Handle selection(hid_t dataset, const std::vector<std::int64_t>& offset, const std::vector<std::int64_t>& count,
                 const File& file, const std::string& path, Handle* memspace) {
  Handle filespace(check_id(H5Dget_space(dataset), file, path, "get dataspace"));
  const int ndims = H5Sget_simple_extent_ndims(filespace.id());
  if (ndims != static_cast<int>(offset.size()) || ndims != static_cast<int>(count.size())) {
    fail(file, path, fmt::format("hyperslab of rank {} on a dataset of rank {}", offset.size(), ndims));
  }
  const std::int64_t total = std::accumulate(count.begin(), count.end(), std::int64_t{1}, std::multiplies<>());
  if (total == 0) {
    check(H5Sselect_none(filespace.id()), file, path, "select none");
    hsize_t one = 1;
    *memspace = Handle(H5Screate_simple(1, &one, nullptr));
    check(H5Sselect_none(memspace->id()), file, path, "select none");
    return filespace;
  }
  std::vector<hsize_t> off(offset.begin(), offset.end()), cnt(count.begin(), count.end());
  check(H5Sselect_hyperslab(filespace.id(), H5S_SELECT_SET, off.data(), nullptr, cnt.data(), nullptr), file, path,
        fmt::format("select hyperslab offset [{}] count [{}]", fmt::join(offset, ", "), fmt::join(count, ", ")));
  *memspace = Handle(H5Screate_simple(ndims, cnt.data(), nullptr));
  return filespace;
}

}  // namespace

void silence_error_stack() { H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr); }

Handle::~Handle() { close(); }

Handle& Handle::operator=(Handle&& o) noexcept {
  if (this != &o) {
    close();
    id_ = o.id_;
    o.id_ = H5I_INVALID_HID;
  }
  return *this;
}

void Handle::close() {
  if (id_ < 0) return;
  switch (H5Iget_type(id_)) {
    case H5I_FILE: H5Fclose(id_); break;
    case H5I_GROUP: H5Gclose(id_); break;
    case H5I_DATASET: H5Dclose(id_); break;
    case H5I_DATASPACE: H5Sclose(id_); break;
    case H5I_DATATYPE: H5Tclose(id_); break;
    case H5I_ATTR: H5Aclose(id_); break;
    case H5I_GENPROP_LST: H5Pclose(id_); break;
    default: break;
  }
  id_ = H5I_INVALID_HID;
}

void fail(ExitCode code, const std::string& file, const std::string& object, const std::string& what) {
  const std::string detail = stack_message();
  std::string msg = object.empty() ? fmt::format("{}: {}", file, what) : fmt::format("{}: {}: {}", file, object, what);
  if (!detail.empty()) msg += fmt::format(" (HDF5: {})", detail);
  throw_error(code, msg);
}

void fail(const File& file, const std::string& object, const std::string& what) {
  fail(file.error_code(), file.path(), object, what);
}

namespace {
// Checks that `path` exists and is HDF5 before handing it to H5Fopen, for messages users understand.
std::string preflight(const std::string& path) {
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) return fmt::format("{}: file not found", path);
  if (std::filesystem::is_directory(path, ec)) return fmt::format("{}: is a directory, expected an HDF5 file", path);
  const htri_t ok = H5Fis_hdf5(path.c_str());
  if (ok <= 0) {
    const std::string detail = stack_message();
    return fmt::format("{}: not a readable HDF5 file (wrong format, or truncated){}", path,
                       detail.empty() ? "" : " (HDF5: " + detail + ")");
  }
  return {};
}
}  // namespace

File File::open(const std::string& path, Access access, ExitCode on_error) {
  ScopedPhase phase(Phase::io);
  File f;
  f.path_ = path;
  f.on_error_ = on_error;
  if (const std::string problem = preflight(path); !problem.empty()) throw_error(on_error, problem);
  const unsigned flags = access == Access::read_write ? H5F_ACC_RDWR : H5F_ACC_RDONLY;
  f.handle_ = Handle(check_id(H5Fopen(path.c_str(), flags, H5P_DEFAULT), f, "", "open"));
  return f;
}

File File::create(const std::string& path) {
  ScopedPhase phase(Phase::io);
  File f;
  f.path_ = path;
  f.handle_ = Handle(check_id(H5Fcreate(path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT), f, "", "create"));
  return f;
}

namespace {
Handle parallel_fapl(MPI_Comm comm) {
  Handle fapl(H5Pcreate(H5P_FILE_ACCESS));
  H5Pset_fapl_mpio(fapl.id(), comm, MPI_INFO_NULL);
  H5Pset_all_coll_metadata_ops(fapl.id(), true);
  H5Pset_coll_metadata_write(fapl.id(), true);
  return fapl;
}
Handle collective_dxpl() {
  Handle dxpl(H5Pcreate(H5P_DATASET_XFER));
  H5Pset_dxpl_mpio(dxpl.id(), H5FD_MPIO_COLLECTIVE);
  return dxpl;
}
}  // namespace

File File::open_parallel(const std::string& path, Access access, MPI_Comm comm, ExitCode on_error) {
  ScopedPhase phase(Phase::io);
  File f;
  f.path_ = path;
  f.on_error_ = on_error;
  f.parallel_ = true;
  f.rank_ = comm_rank(comm);
  const std::string problem = f.rank_ == 0 ? preflight(path) : std::string();
  agree(comm, !problem.empty(), problem, on_error);
  Handle fapl = parallel_fapl(comm);
  const unsigned flags = access == Access::read_write ? H5F_ACC_RDWR : H5F_ACC_RDONLY;
  const hid_t id = H5Fopen(path.c_str(), flags, fapl.id());
  const std::string detail = id < 0 ? stack_message() : std::string();
  agree(comm, id < 0, fmt::format("{}: cannot open (HDF5: {})", path, detail), on_error);
  f.handle_ = Handle(id);
  f.dxpl_ = collective_dxpl();
  return f;
}

File File::create_parallel(const std::string& path, MPI_Comm comm) {
  ScopedPhase phase(Phase::io);
  File f;
  f.path_ = path;
  f.parallel_ = true;
  f.rank_ = comm_rank(comm);
  Handle fapl = parallel_fapl(comm);
  const hid_t id = H5Fcreate(path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, fapl.id());
  const std::string detail = id < 0 ? stack_message() : std::string();
  agree(comm, id < 0, fmt::format("{}: cannot create (HDF5: {})", path, detail), ExitCode::usage);
  f.handle_ = Handle(id);
  f.dxpl_ = collective_dxpl();
  return f;
}

void File::flush() const {
  ScopedPhase phase(Phase::io);
  if (H5Fflush(handle_.id(), H5F_SCOPE_LOCAL) < 0) fail(*this, "", "flush");
}

void File::close() {
  if (!handle_.valid()) return;
  ScopedPhase phase(Phase::io);
  dxpl_.close();
  // A serial flush reports write errors even when open objects delay the close. In a parallel file
  // H5Fflush is MPI_File_sync, i.e. fsync of everything written; H5Fclose writes the same data without
  // it, and writers that need durability sync once at their end (RecordingWriter::finish).
  const herr_t flushed = parallel_ ? 0 : H5Fflush(handle_.id(), H5F_SCOPE_LOCAL);
  const herr_t closed = H5Fclose(handle_.release());
  if (flushed < 0 || closed < 0) fail(*this, "", "flush and close");
}

template <> hid_t native_type<float>() { return H5T_NATIVE_FLOAT; }
template <> hid_t native_type<double>() { return H5T_NATIVE_DOUBLE; }
template <> hid_t native_type<std::int32_t>() { return H5T_NATIVE_INT32; }
template <> hid_t native_type<std::int64_t>() { return H5T_NATIVE_INT64; }
template <> hid_t native_type<std::uint8_t>() { return H5T_NATIVE_UINT8; }

std::string DatasetShape::describe() const {
  std::string type;
  switch (type_class) {
    case H5T_FLOAT: type = fmt::format("float{}", 8 * type_size); break;
    case H5T_INTEGER: type = fmt::format("{}int{}", is_signed ? "" : "u", 8 * type_size); break;
    case H5T_STRING: type = "string"; break;
    case H5T_COMPOUND: type = "compound"; break;
    default: type = "other type"; break;
  }
  if (dims.empty()) return type + " scalar";
  return fmt::format("{} [{}]", type, fmt::join(dims, " x "));
}

bool exists(const File& file, const std::string& path) {
  if (path == "/") return true;
  for (const std::string& p : prefixes(path)) {
    const htri_t e = H5Lexists(file.id(), p.c_str(), H5P_DEFAULT);
    if (e < 0) fail(file, p, "check existence");
    if (e == 0) return false;
  }
  return true;
}

Handle open_dataset(const File& file, const std::string& path) {
  if (!exists(file, path)) throw_error(file.error_code(), fmt::format("{}: dataset {} is missing", file.path(), path));
  return Handle(check_id(H5Dopen2(file.id(), path.c_str(), H5P_DEFAULT), file, path, "open dataset"));
}

Handle open_group(const File& file, const std::string& path) {
  if (!exists(file, path)) throw_error(file.error_code(), fmt::format("{}: group {} is missing", file.path(), path));
  return Handle(check_id(H5Gopen2(file.id(), path.c_str(), H5P_DEFAULT), file, path, "open group"));
}

Handle create_group(const File& file, const std::string& path) {
  ScopedPhase phase(Phase::io);
  Handle lcpl(H5Pcreate(H5P_LINK_CREATE));
  H5Pset_create_intermediate_group(lcpl.id(), 1);
  return Handle(check_id(H5Gcreate2(file.id(), path.c_str(), lcpl.id(), H5P_DEFAULT, H5P_DEFAULT), file, path,
                         "create group"));
}

void remove(const File& file, const std::string& path) {
  ScopedPhase phase(Phase::io);
  if (!exists(file, path)) return;
  check(H5Ldelete(file.id(), path.c_str(), H5P_DEFAULT), file, path, "delete");
}

namespace {
herr_t collect_name(hid_t, const char* name, const H5L_info_t*, void* data) {
  static_cast<std::vector<std::string>*>(data)->emplace_back(name);
  return 0;
}
}  // namespace

std::vector<std::string> list(const File& file, const std::string& group) {
  Handle g = open_group(file, group);
  std::vector<std::string> names;
  check(H5Literate(g.id(), H5_INDEX_NAME, H5_ITER_INC, nullptr, collect_name, &names), file, group, "list members");
  return names;
}

DatasetShape shape_of(const File& file, const std::string& path) {
  Handle d = open_dataset(file, path);
  Handle space(check_id(H5Dget_space(d.id()), file, path, "get dataspace"));
  Handle type(check_id(H5Dget_type(d.id()), file, path, "get type"));
  DatasetShape s;
  const int nd = H5Sget_simple_extent_ndims(space.id());
  if (nd < 0) fail(file, path, "get rank");
  std::vector<hsize_t> dims(static_cast<std::size_t>(nd));
  H5Sget_simple_extent_dims(space.id(), dims.data(), nullptr);
  s.dims.assign(dims.begin(), dims.end());
  s.type_class = H5Tget_class(type.id());
  s.type_size = H5Tget_size(type.id());
  if (s.type_class == H5T_INTEGER) s.is_signed = H5Tget_sign(type.id()) == H5T_SGN_2;
  Handle dcpl(check_id(H5Dget_create_plist(d.id()), file, path, "get creation properties"));
  if (H5Pget_layout(dcpl.id()) == H5D_CHUNKED) {
    std::vector<hsize_t> c(static_cast<std::size_t>(nd));
    if (H5Pget_chunk(dcpl.id(), nd, c.data()) != nd) fail(file, path, "get chunk shape");
    s.chunk.assign(c.begin(), c.end());
  }
  return s;
}

template <typename T>
Handle create_dataset(const File& file, const std::string& path, const std::vector<std::int64_t>& dims,
                      const std::vector<std::int64_t>& chunk) {
  ScopedPhase phase(Phase::io);
  std::vector<hsize_t> d(dims.begin(), dims.end());
  Handle space(check_id(H5Screate_simple(static_cast<int>(d.size()), d.data(), nullptr), file, path, "create dataspace"));
  Handle dcpl(H5Pcreate(H5P_DATASET_CREATE));
  const bool any_zero = std::any_of(dims.begin(), dims.end(), [](std::int64_t x) { return x == 0; });
  if (!chunk.empty() && !any_zero) {
    std::vector<hsize_t> c(chunk.begin(), chunk.end());
    check(H5Pset_chunk(dcpl.id(), static_cast<int>(c.size()), c.data()), file, path, "set chunking");
  }
  H5Pset_fill_time(dcpl.id(), H5D_FILL_TIME_NEVER);
  if (file.parallel()) H5Pset_alloc_time(dcpl.id(), H5D_ALLOC_TIME_EARLY);
  Handle lcpl(H5Pcreate(H5P_LINK_CREATE));
  H5Pset_create_intermediate_group(lcpl.id(), 1);
  return Handle(check_id(H5Dcreate2(file.id(), path.c_str(), native_type<T>(), space.id(), lcpl.id(), dcpl.id(), H5P_DEFAULT),
                         file, path, fmt::format("create dataset [{}]", fmt::join(dims, " x "))));
}

template <typename T>
void write_block(const File& file, const std::string& path, const std::vector<std::int64_t>& offset,
                 const std::vector<std::int64_t>& count, std::span<const T> data) {
  ScopedPhase phase(Phase::io);
  Handle d = open_dataset(file, path);
  if (is_empty(d.id())) return;  // zero-size datasets have no storage to write (same on every rank)
  Handle memspace;
  Handle filespace = selection(d.id(), offset, count, file, path, &memspace);
  static const T dummy{};
  const T* buf = data.empty() ? &dummy : data.data();
  check(H5Dwrite(d.id(), native_type<T>(), memspace.id(), filespace.id(), file.transfer(), buf), file, path,
        fmt::format("write block at [{}]", fmt::join(offset, ", ")));
}

template <typename T>
void write_block_independent(const File& file, hid_t dataset, const std::string& path, const std::vector<std::int64_t>& offset,
                             const std::vector<std::int64_t>& count, std::span<const T> data) {
  ScopedPhase phase(Phase::io);
  if (is_empty(dataset)) return;
  Handle memspace;
  Handle filespace = selection(dataset, offset, count, file, path, &memspace);
  Handle dxpl(H5Pcreate(H5P_DATASET_XFER));
  if (file.parallel()) H5Pset_dxpl_mpio(dxpl.id(), H5FD_MPIO_INDEPENDENT);
  static const T dummy{};
  const T* buf = data.empty() ? &dummy : data.data();
  check(H5Dwrite(dataset, native_type<T>(), memspace.id(), filespace.id(), dxpl.id(), buf), file, path,
        fmt::format("write block at [{}]", fmt::join(offset, ", ")));
}

template <typename T>
void read_block(const File& file, const std::string& path, const std::vector<std::int64_t>& offset,
                const std::vector<std::int64_t>& count, std::span<T> data) {
  ScopedPhase phase(Phase::io);
  Handle d = open_dataset(file, path);
  if (is_empty(d.id())) return;
  Handle memspace;
  Handle filespace = selection(d.id(), offset, count, file, path, &memspace);
  T dummy{};
  T* buf = data.empty() ? &dummy : data.data();
  check(H5Dread(d.id(), native_type<T>(), memspace.id(), filespace.id(), file.transfer(), buf), file, path,
        fmt::format("read block at [{}] of size [{}]", fmt::join(offset, ", "), fmt::join(count, " x ")));
}

template <typename T>
void write_all(const File& file, const std::string& path, const std::vector<std::int64_t>& dims, std::span<const T> data) {
  create_dataset<T>(file, path, dims);
  std::vector<std::int64_t> zero(dims.size(), 0);
  if (file.rank() == 0) {
    write_block<T>(file, path, zero, dims, data);
  } else {
    write_block<T>(file, path, zero, std::vector<std::int64_t>(dims.size(), 0), std::span<const T>());
  }
}

template <typename T>
std::vector<T> read_all(const File& file, const std::string& path) {
  ScopedPhase phase(Phase::io);
  Handle d = open_dataset(file, path);
  Handle space(check_id(H5Dget_space(d.id()), file, path, "get dataspace"));
  const hssize_t n = H5Sget_simple_extent_npoints(space.id());
  if (n < 0) fail(file, path, "count elements");
  std::vector<T> out(static_cast<std::size_t>(n));
  if (n > 0) {
    check(H5Dread(d.id(), native_type<T>(), H5S_ALL, H5S_ALL, H5P_DEFAULT, out.data()), file, path,
          "read (HDF5 could not convert it to the expected type, or the data is unreadable)");
  }
  return out;
}

namespace {
template <typename T>
void write_scalar_value(const File& file, const std::string& path, T value) {
  ScopedPhase phase(Phase::io);
  Handle space(H5Screate(H5S_SCALAR));
  Handle lcpl(H5Pcreate(H5P_LINK_CREATE));
  H5Pset_create_intermediate_group(lcpl.id(), 1);
  Handle d(check_id(H5Dcreate2(file.id(), path.c_str(), native_type<T>(), space.id(), lcpl.id(), H5P_DEFAULT, H5P_DEFAULT),
                    file, path, "create scalar dataset"));
  Handle filespace(H5Dget_space(d.id()));
  if (file.rank() != 0) H5Sselect_none(filespace.id());
  check(H5Dwrite(d.id(), native_type<T>(), filespace.id(), filespace.id(), file.transfer(), &value), file, path, "write scalar");
}
}  // namespace

void write_scalar(const File& file, const std::string& path, double value) { write_scalar_value(file, path, value); }
void write_scalar(const File& file, const std::string& path, std::int64_t value) { write_scalar_value(file, path, value); }

double read_scalar(const File& file, const std::string& path) {
  ScopedPhase phase(Phase::io);
  const auto shape = shape_of(file, path);
  if (!shape.dims.empty() && !(shape.dims.size() == 1 && shape.dims[0] == 1)) {
    throw_error(file.error_code(), fmt::format("{}: {}: expected a scalar, found {}", file.path(), path, shape.describe()));
  }
  Handle d = open_dataset(file, path);
  double v = 0;
  check(H5Dread(d.id(), H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, &v), file, path, "read scalar");
  return v;
}

void write_strings(const File& file, const std::string& path, const std::vector<std::string>& values) {
  ScopedPhase phase(Phase::io);
  if (file.parallel()) throw InternalError(fmt::format("{}: {}: string datasets need a serial file", file.path(), path));
  Handle type = string_type();
  hsize_t n = values.size();
  Handle space(H5Screate_simple(1, &n, nullptr));
  Handle lcpl(H5Pcreate(H5P_LINK_CREATE));
  H5Pset_create_intermediate_group(lcpl.id(), 1);
  Handle d(check_id(H5Dcreate2(file.id(), path.c_str(), type.id(), space.id(), lcpl.id(), H5P_DEFAULT, H5P_DEFAULT), file,
                    path, "create string dataset"));
  std::vector<const char*> ptrs;
  for (const auto& v : values) ptrs.push_back(v.c_str());
  if (n > 0) check(H5Dwrite(d.id(), type.id(), H5S_ALL, H5S_ALL, H5P_DEFAULT, ptrs.data()), file, path, "write strings");
}

std::vector<std::string> read_strings(const File& file, const std::string& path) {
  ScopedPhase phase(Phase::io);
  Handle d = open_dataset(file, path);
  Handle ftype(check_id(H5Dget_type(d.id()), file, path, "get type"));
  if (H5Tget_class(ftype.id()) != H5T_STRING) {
    throw_error(file.error_code(), fmt::format("{}: {}: expected strings, found {}", file.path(), path,
                                               shape_of(file, path).describe()));
  }
  Handle space(check_id(H5Dget_space(d.id()), file, path, "get dataspace"));
  const auto n = static_cast<std::size_t>(H5Sget_simple_extent_npoints(space.id()));
  std::vector<std::string> out;
  if (H5Tis_variable_str(ftype.id()) > 0) {
    Handle mtype = string_type();
    std::vector<char*> ptrs(n, nullptr);
    if (n > 0) check(H5Dread(d.id(), mtype.id(), H5S_ALL, H5S_ALL, H5P_DEFAULT, ptrs.data()), file, path, "read strings");
    for (char* p : ptrs) out.emplace_back(p ? p : "");
    if (n > 0) H5Dvlen_reclaim(mtype.id(), space.id(), H5P_DEFAULT, ptrs.data());
  } else {
    const std::size_t len = H5Tget_size(ftype.id());
    Handle mtype(H5Tcopy(H5T_C_S1));
    H5Tset_size(mtype.id(), len);
    std::vector<char> buf(n * len);
    if (n > 0) check(H5Dread(d.id(), mtype.id(), H5S_ALL, H5S_ALL, H5P_DEFAULT, buf.data()), file, path, "read strings");
    for (std::size_t i = 0; i < n; ++i) {
      const char* s = buf.data() + i * len;
      out.emplace_back(s, strnlen(s, len));
    }
  }
  return out;
}

namespace {
Handle fresh_attribute(const File& file, const std::string& object, const std::string& name, hid_t type, hid_t space) {
  ScopedPhase phase(Phase::io);
  const htri_t e = H5Aexists_by_name(file.id(), object.c_str(), name.c_str(), H5P_DEFAULT);
  if (e < 0) fail(file, object, fmt::format("check attribute '{}'", name));
  if (e > 0) check(H5Adelete_by_name(file.id(), object.c_str(), name.c_str(), H5P_DEFAULT), file, object,
                   fmt::format("replace attribute '{}'", name));
  return Handle(check_id(H5Acreate_by_name(file.id(), object.c_str(), name.c_str(), type, space, H5P_DEFAULT, H5P_DEFAULT,
                                           H5P_DEFAULT),
                         file, object, fmt::format("create attribute '{}'", name)));
}

template <typename T>
void write_numeric_attribute(const File& file, const std::string& object, const std::string& name, const T* values,
                             std::size_t n, bool scalar) {
  hsize_t dim = n;
  Handle space(scalar ? H5Screate(H5S_SCALAR) : H5Screate_simple(1, &dim, nullptr));
  Handle a = fresh_attribute(file, object, name, native_type<T>(), space.id());
  check(H5Awrite(a.id(), native_type<T>(), values), file, object, fmt::format("write attribute '{}'", name));
}

Handle open_attribute(const File& file, const std::string& object, const std::string& name) {
  if (!has_attribute(file, object, name)) {
    throw_error(file.error_code(), fmt::format("{}: {}: attribute '{}' is missing", file.path(), object, name));
  }
  return Handle(check_id(H5Aopen_by_name(file.id(), object.c_str(), name.c_str(), H5P_DEFAULT, H5P_DEFAULT), file, object,
                         fmt::format("open attribute '{}'", name)));
}
}  // namespace

void write_attribute(const File& file, const std::string& object, const std::string& name, const std::string& value) {
  Handle type = string_type();
  Handle space(H5Screate(H5S_SCALAR));
  Handle a = fresh_attribute(file, object, name, type.id(), space.id());
  const char* p = value.c_str();
  check(H5Awrite(a.id(), type.id(), &p), file, object, fmt::format("write attribute '{}'", name));
}
void write_attribute(const File& file, const std::string& object, const std::string& name, const char* value) {
  write_attribute(file, object, name, std::string(value));
}
void write_attribute(const File& file, const std::string& object, const std::string& name, double value) {
  write_numeric_attribute(file, object, name, &value, 1, true);
}
void write_attribute(const File& file, const std::string& object, const std::string& name, std::int64_t value) {
  write_numeric_attribute(file, object, name, &value, 1, true);
}
void write_attribute(const File& file, const std::string& object, const std::string& name, std::span<const double> values) {
  write_numeric_attribute(file, object, name, values.data(), values.size(), false);
}
void write_attribute(const File& file, const std::string& object, const std::string& name,
                     std::span<const std::int64_t> values) {
  write_numeric_attribute(file, object, name, values.data(), values.size(), false);
}
void write_attribute(const File& file, const std::string& object, const std::string& name,
                     const std::vector<std::string>& values) {
  Handle type = string_type();
  hsize_t n = values.size();
  Handle space(H5Screate_simple(1, &n, nullptr));
  Handle a = fresh_attribute(file, object, name, type.id(), space.id());
  std::vector<const char*> ptrs;
  for (const auto& v : values) ptrs.push_back(v.c_str());
  check(H5Awrite(a.id(), type.id(), ptrs.data()), file, object, fmt::format("write attribute '{}'", name));
}

bool has_attribute(const File& file, const std::string& object, const std::string& name) {
  if (!exists(file, object)) return false;
  const htri_t e = H5Aexists_by_name(file.id(), object.c_str(), name.c_str(), H5P_DEFAULT);
  if (e < 0) fail(file, object, fmt::format("check attribute '{}'", name));
  return e > 0;
}

std::string read_string_attribute(const File& file, const std::string& object, const std::string& name) {
  ScopedPhase phase(Phase::io);
  Handle a = open_attribute(file, object, name);
  Handle ftype(H5Aget_type(a.id()));
  if (H5Tget_class(ftype.id()) != H5T_STRING) {
    throw_error(file.error_code(), fmt::format("{}: {}: attribute '{}' is not a string", file.path(), object, name));
  }
  if (H5Tis_variable_str(ftype.id()) > 0) {
    Handle mtype = string_type();
    char* p = nullptr;
    check(H5Aread(a.id(), mtype.id(), &p), file, object, fmt::format("read attribute '{}'", name));
    std::string out = p ? p : "";
    H5free_memory(p);
    return out;
  }
  const std::size_t len = H5Tget_size(ftype.id());
  std::vector<char> buf(len + 1, '\0');
  Handle mtype(H5Tcopy(H5T_C_S1));
  H5Tset_size(mtype.id(), len);
  check(H5Aread(a.id(), mtype.id(), buf.data()), file, object, fmt::format("read attribute '{}'", name));
  return std::string(buf.data(), strnlen(buf.data(), len));
}

double read_double_attribute(const File& file, const std::string& object, const std::string& name) {
  ScopedPhase phase(Phase::io);
  Handle a = open_attribute(file, object, name);
  double v = 0;
  check(H5Aread(a.id(), H5T_NATIVE_DOUBLE, &v), file, object, fmt::format("read attribute '{}' as a number", name));
  return v;
}

std::int64_t read_int_attribute(const File& file, const std::string& object, const std::string& name) {
  ScopedPhase phase(Phase::io);
  Handle a = open_attribute(file, object, name);
  std::int64_t v = 0;
  check(H5Aread(a.id(), H5T_NATIVE_INT64, &v), file, object, fmt::format("read attribute '{}' as an integer", name));
  return v;
}

std::vector<double> read_double_array_attribute(const File& file, const std::string& object, const std::string& name) {
  ScopedPhase phase(Phase::io);
  Handle a = open_attribute(file, object, name);
  Handle space(H5Aget_space(a.id()));
  const hssize_t n = H5Sget_simple_extent_npoints(space.id());
  std::vector<double> v(static_cast<std::size_t>(std::max<hssize_t>(n, 0)));
  if (!v.empty()) check(H5Aread(a.id(), H5T_NATIVE_DOUBLE, v.data()), file, object, fmt::format("read attribute '{}'", name));
  return v;
}

#define POPCODE_H5_INSTANTIATE(T)                                                                                        \
  template Handle create_dataset<T>(const File&, const std::string&, const std::vector<std::int64_t>&,                 \
                                    const std::vector<std::int64_t>&);                                                 \
  template void write_block<T>(const File&, const std::string&, const std::vector<std::int64_t>&,                      \
                               const std::vector<std::int64_t>&, std::span<const T>);                                  \
  template void write_block_independent<T>(const File&, hid_t, const std::string&, const std::vector<std::int64_t>&,   \
                                           const std::vector<std::int64_t>&, std::span<const T>);                      \
  template void read_block<T>(const File&, const std::string&, const std::vector<std::int64_t>&,                       \
                              const std::vector<std::int64_t>&, std::span<T>);                                         \
  template void write_all<T>(const File&, const std::string&, const std::vector<std::int64_t>&, std::span<const T>);   \
  template std::vector<T> read_all<T>(const File&, const std::string&);
POPCODE_H5_INSTANTIATE(float)
POPCODE_H5_INSTANTIATE(double)
POPCODE_H5_INSTANTIATE(std::int32_t)
POPCODE_H5_INSTANTIATE(std::int64_t)
POPCODE_H5_INSTANTIATE(std::uint8_t)
#undef POPCODE_H5_INSTANTIATE

}  // namespace popcode::h5
