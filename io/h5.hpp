#pragma once
// A thin RAII layer over the HDF5 C API, serial and parallel (MPI-IO).
//
// Every call is checked. A failure throws popcode::Error whose message names the file and the object
// (dataset, group or attribute path), the operation, and the innermost message of HDF5's error stack.
// Files opened for reading recordings pass ExitCode::bad_input so that a malformed or truncated input
// exits with code 3; files popcode writes itself use ExitCode::internal.
//
// Parallel contract: in a file opened with File::open_parallel/create_parallel every function here that
// creates or modifies metadata (datasets, groups, attributes) is collective and must be called by all
// ranks with identical arguments; read_block/write_block are collective (ranks with nothing to transfer
// pass an empty block).
#include <hdf5.h>
#include <mpi.h>

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "src/errors.hpp"

namespace popcode::h5 {

// Turns off HDF5's automatic error printing (popcode reports errors itself). Call once at start-up.
void silence_error_stack();

// Owns one hid_t of any kind and closes it with the matching H5*close.
class Handle {
 public:
  Handle() = default;
  explicit Handle(hid_t id) : id_(id) {}
  ~Handle();
  Handle(Handle&& o) noexcept : id_(o.id_) { o.id_ = H5I_INVALID_HID; }
  Handle& operator=(Handle&& o) noexcept;
  Handle(const Handle&) = delete;
  Handle& operator=(const Handle&) = delete;
  hid_t id() const { return id_; }
  bool valid() const { return id_ >= 0; }
  // Gives up ownership without closing.
  hid_t release() {
    const hid_t id = id_;
    id_ = H5I_INVALID_HID;
    return id;
  }
  void close();

 private:
  hid_t id_ = H5I_INVALID_HID;
};

enum class Access { read_only, read_write };

class File {
 public:
  // Serial access from one process.
  static File open(const std::string& path, Access access, ExitCode on_error);
  static File create(const std::string& path);
  // Collective over `comm`: MPI-IO driver with collective metadata reads and writes.
  static File open_parallel(const std::string& path, Access access, MPI_Comm comm, ExitCode on_error);
  static File create_parallel(const std::string& path, MPI_Comm comm);

  hid_t id() const { return handle_.id(); }
  bool is_open() const { return handle_.valid(); }
  const std::string& path() const { return path_; }
  bool parallel() const { return parallel_; }
  // Rank in the file's communicator (0 for serial files).
  int rank() const { return rank_; }
  ExitCode error_code() const { return on_error_; }
  // Transfer property list: collective MPI-IO for parallel files, default otherwise.
  hid_t transfer() const { return dxpl_.valid() ? dxpl_.id() : H5P_DEFAULT; }
  // Writes cached data and metadata to disk (collective for parallel files).
  void flush() const;
  // Flushes and closes (collective for parallel files). Errors surface here rather than in a destructor.
  void close();

 private:
  Handle handle_;
  Handle dxpl_;
  std::string path_;
  bool parallel_ = false;
  int rank_ = 0;
  ExitCode on_error_ = ExitCode::internal;
};

// Throws with the file, object, operation and HDF5's innermost message.
[[noreturn]] void fail(const File& file, const std::string& object, const std::string& what);
[[noreturn]] void fail(ExitCode code, const std::string& file, const std::string& object, const std::string& what);

// Type mapping for the element types popcode stores.
template <typename T> hid_t native_type();

struct DatasetShape {
  std::vector<std::int64_t> dims;
  H5T_class_t type_class = H5T_NO_CLASS;
  std::size_t type_size = 0;
  bool is_signed = true;
  std::vector<std::int64_t> chunk;  // chunk shape; empty for contiguous (or compact) storage
  std::string describe() const;  // e.g. "float32 [5600 x 10000]"
};

// True when every component of the absolute path `path` exists (e.g. "/neurons/position").
bool exists(const File& file, const std::string& path);
DatasetShape shape_of(const File& file, const std::string& path);

// Opens a dataset or group, failing with a message that names the path when absent.
Handle open_dataset(const File& file, const std::string& path);
Handle open_group(const File& file, const std::string& path);
// Creates a group and any missing parents.
Handle create_group(const File& file, const std::string& path);
// Deletes the link `path` if it exists (the space is not reclaimed; h5repack reclaims it).
void remove(const File& file, const std::string& path);
// Lists the link names directly under a group.
std::vector<std::string> list(const File& file, const std::string& group);

// Creates a dataset of T with `dims`; `chunk` empty means contiguous. Fill values are never written.
template <typename T>
Handle create_dataset(const File& file, const std::string& path, const std::vector<std::int64_t>& dims,
                      const std::vector<std::int64_t>& chunk = {});

// Collective for parallel files: transfers the hyperslab [offset, offset + count) of a dataset of any
// rank to/from a contiguous row-major buffer. A zero count anywhere means "nothing on this rank".
template <typename T>
void write_block(const File& file, const std::string& path, const std::vector<std::int64_t>& offset,
                 const std::vector<std::int64_t>& count, std::span<const T> data);
template <typename T>
void read_block(const File& file, const std::string& path, const std::vector<std::int64_t>& offset,
                const std::vector<std::int64_t>& count, std::span<T> data);
// Not collective: one rank writes a hyperslab of the open dataset `dataset` (named `path` in messages) with
// independent MPI-IO (plain writes in a serial file). In a parallel file the dataset's storage must already
// be allocated (create_dataset allocates it early), and the dataset is opened by every rank together
// (open_dataset is a collective metadata operation) before ranks write different numbers of blocks.
template <typename T>
void write_block_independent(const File& file, hid_t dataset, const std::string& path, const std::vector<std::int64_t>& offset,
                             const std::vector<std::int64_t>& count, std::span<const T> data);

// Whole small datasets. In a parallel file the write is collective and rank 0's data is written;
// the read is independent (each caller reads).
template <typename T>
void write_all(const File& file, const std::string& path, const std::vector<std::int64_t>& dims, std::span<const T> data);
template <typename T>
std::vector<T> read_all(const File& file, const std::string& path);
// A scalar float64 dataset (h5py: f[path][()]). Collective in parallel files; rank 0's value is written.
void write_scalar(const File& file, const std::string& path, double value);
void write_scalar(const File& file, const std::string& path, std::int64_t value);
double read_scalar(const File& file, const std::string& path);
// Variable-length UTF-8 strings (h5py reads them as str). Serial files only: parallel HDF5 cannot write
// variable-length data into datasets.
void write_strings(const File& file, const std::string& path, const std::vector<std::string>& values);
std::vector<std::string> read_strings(const File& file, const std::string& path);

// Attributes on the object at `object` ("/" for the file). Writing replaces an existing attribute.
void write_attribute(const File& file, const std::string& object, const std::string& name, const std::string& value);
void write_attribute(const File& file, const std::string& object, const std::string& name, const char* value);
void write_attribute(const File& file, const std::string& object, const std::string& name, double value);
void write_attribute(const File& file, const std::string& object, const std::string& name, std::int64_t value);
void write_attribute(const File& file, const std::string& object, const std::string& name, std::span<const double> values);
void write_attribute(const File& file, const std::string& object, const std::string& name, std::span<const std::int64_t> values);
void write_attribute(const File& file, const std::string& object, const std::string& name, const std::vector<std::string>& values);
bool has_attribute(const File& file, const std::string& object, const std::string& name);
std::string read_string_attribute(const File& file, const std::string& object, const std::string& name);
double read_double_attribute(const File& file, const std::string& object, const std::string& name);
std::int64_t read_int_attribute(const File& file, const std::string& object, const std::string& name);
std::vector<double> read_double_array_attribute(const File& file, const std::string& object, const std::string& name);

}  // namespace popcode::h5
