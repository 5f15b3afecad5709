#pragma once
// NumPy .npy streams (format versions 1.0, 2.0 and 3.0), as written by np.save and np.lib.format.
//
// Element types: f4 f8 i1 i2 i4 i8 u1 u2 u4 u8 b1 in either byte order, fixed-width strings 'U<n>' (UTF-32,
// returned as UTF-8) and 'S<n>' (raw bytes), C or Fortran order, any number of dimensions (up to 64).
// A '|O' (object) array is only understood as what np.save writes for a dict: a 0-d object array whose pickle
// holds a dict of arrays (see io/pickle.hpp); read_npy_file / parse_npy_file handle that case.
// Refused with a message naming the file and the dtype: float16, long double, complex, datetime/timedelta,
// structured/void dtypes, and anything else numpy can write but popcode has no use for.
//
// Every size is checked before it is used to allocate: a header that claims more data than the file holds is
// an InputError ("... needs N data bytes but the file holds M (truncated?)"), never a huge allocation.
#include <cstdint>
#include <map>
#include <span>
#include <string>
#include <vector>

namespace popcode {

struct NpyHeader {
  std::vector<std::int64_t> shape;
  std::string dtype;  // descr as written, e.g. "<f4", "|u1", "<U10", "|O"
  char kind = 0;      // 'f','i','u','b','U','S','O'
  int item_size = 0;  // bytes per element ('U': 4 per character; 'O': 0, the data is a pickle, not elements)
  bool big_endian = false;
  bool fortran_order = false;
  std::uint64_t data_offset = 0;     // bytes from the start of the .npy stream to the first element
  std::int64_t count() const;        // product of shape (1 for shape ())
  std::uint64_t data_bytes() const;  // count()*item_size
};

// Parses magic, version (1.0, 2.0, 3.0) and header dict from the first bytes of a .npy stream; the data need
// not be present. Rejects overflowing/absurd shapes (product * item_size must fit in int64) and unsupported
// dtypes (float16, complex, structured, datetime...) with a message naming `name`.
NpyHeader parse_npy_header(std::span<const unsigned char> prefix, const std::string& name);

// How many leading bytes of a .npy stream parse_npy_header needs, judged from its first 12 bytes (fewer if the
// stream is shorter): magic, version, length field and header. When those bytes are already enough to refuse
// the stream (bad magic or version, header length above 1 MiB) it returns first.size().
std::size_t npy_header_length(std::span<const unsigned char> first);

// Reads just the header of a file (at most the header bytes), and checks that the file is long enough for
// data_bytes() (for non-'O' kinds): a lying shape gives InputError, never a huge allocation.
NpyHeader read_npy_header(const std::string& path);

// Fills h.dtype, h.kind, h.item_size and h.big_endian from a descr such as "<f4", "|S5" or "|O"; used for the
// .npy header and for dtypes rebuilt from a pickle. Unsupported dtypes throw InputError naming `name`.
void parse_npy_descr(const std::string& descr, NpyHeader& h, const std::string& name);

// Checks h.shape against h.item_size (non-negative dimensions, at most 64 of them, count()*item_size fits in
// int64); `name` is used in the message.
void check_npy_shape(const NpyHeader& h, const std::string& name);

// "(3, 4)", "(5,)" or "()": a shape the way numpy prints it, for messages.
std::string npy_shape_string(const std::vector<std::int64_t>& shape);

// Converts n consecutive stored elements (storage order, byte order of h) to double / float. Numeric and 'b'
// kinds only; a string or object dtype throws InputError.
void convert_npy_elements(const NpyHeader& h, const unsigned char* raw, std::size_t n, double* out);
void convert_npy_elements(const NpyHeader& h, const unsigned char* raw, std::size_t n, float* out);

struct NpyArray {
  std::vector<std::int64_t> shape;
  std::string dtype;  // e.g. "<f8"
  bool fortran_order = false;
  std::vector<double> values;        // numeric/bool kinds, C (row-major) order
  std::vector<std::string> strings;  // 'U' (UTF-32 -> UTF-8) and 'S' kinds, C order, trailing NULs stripped
};

// Decodes the elements of an array described by h (kind not 'O'); `data` must hold at least h.data_bytes()
// bytes, which is checked. Fortran-ordered data is returned in C order.
NpyArray decode_npy_data(const NpyHeader& h, std::span<const unsigned char> data, const std::string& name);

// A whole .npy stream holding a plain (non-object) array. Throws InputError (exit 3) naming `name`.
NpyArray parse_npy(std::span<const unsigned char> bytes, const std::string& name);
NpyArray read_npy(const std::string& path);

// A .npy is either a plain array, or (np.save of a dict, loaded with allow_pickle=True).item()) a dict of arrays.
struct NpyFile {
  bool is_dict = false;
  NpyArray array;
  std::map<std::string, NpyArray> dict;
};
NpyFile read_npy_file(const std::string& path);
NpyFile parse_npy_file(std::span<const unsigned char> bytes, const std::string& name);

}  // namespace popcode
