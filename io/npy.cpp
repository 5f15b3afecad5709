// NumPy .npy reader: header parsing, element conversion, fixed-width strings, and the dispatch to the pickle
// interpreter for np.save(dict) files. See io/npy.hpp for what is supported and what is refused.
//
// The header dict is parsed with a small purpose-built scanner for exactly the Python literal numpy writes
// ({'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), }) rather than by searching for substrings, so
// that a malformed header is reported as such instead of being half-understood.
#include "io/npy.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <bit>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <limits>
#include <optional>
#include <string_view>

#include "io/pickle.hpp"
#include "src/errors.hpp"

namespace popcode {
namespace {

// numpy itself refuses headers above 10000 bytes unless told otherwise; 1 MiB leaves room for any honest writer
// while keeping a corrupt length field from turning into a large read.
constexpr std::size_t kMaxHeaderLen = std::size_t{1} << 20;
constexpr std::size_t kMaxDims = 64;  // numpy 2's NPY_MAXDIMS
constexpr unsigned char kMagic[] = {0x93, 'N', 'U', 'M', 'P', 'Y'};

[[noreturn]] void bad(const std::string& name, const std::string& what) {
  throw InputError(fmt::format("{}: {}", name, what));
}

// Scanner over the header text. Every method reports a problem with the header through bad().
class HeaderScanner {
 public:
  HeaderScanner(std::string_view text, const std::string& name) : text_(text), name_(name) {}

  void skip_space() {
    while (pos_ < text_.size() &&
           (text_[pos_] == ' ' || text_[pos_] == '\t' || text_[pos_] == '\n' || text_[pos_] == '\r')) {
      ++pos_;
    }
  }
  bool at_end() {
    skip_space();
    return pos_ >= text_.size();
  }
  char peek() {
    if (at_end()) unterminated();
    return text_[pos_];
  }
  bool eat(char c) {
    if (peek() != c) return false;
    ++pos_;
    return true;
  }
  void expect(char c, std::string_view where) {
    if (!eat(c)) {
      bad(name_, fmt::format("header: expected '{}' {} but found '{}' (header: {})", c, where, text_[pos_], shown()));
    }
  }
  std::string string_literal(std::string_view what) {
    const char q = peek();
    if (q != '\'' && q != '"') bad(name_, fmt::format("header: {} is not a quoted string (header: {})", what, shown()));
    const auto end = text_.find(q, pos_ + 1);
    if (end == std::string_view::npos) {
      bad(name_, fmt::format("header: unterminated string in {} (header: {})", what, shown()));
    }
    std::string s(text_.substr(pos_ + 1, end - pos_ - 1));
    pos_ = end + 1;
    return s;
  }
  std::string word() {
    peek();
    const std::size_t start = pos_;
    while (pos_ < text_.size() && (std::isalnum(static_cast<unsigned char>(text_[pos_])) || text_[pos_] == '_')) ++pos_;
    return std::string(text_.substr(start, pos_ - start));
  }
  std::int64_t integer(const std::string& shape_so_far) {
    if (eat('-')) {
      bad(name_, fmt::format("header: negative dimension -{} in the shape (after {})", word(), shape_so_far));
    }
    const std::string digits = word();
    std::string_view d = digits;
    if (!d.empty() && (d.back() == 'L' || d.back() == 'l')) d.remove_suffix(1);  // Python 2 long literal, e.g. 3L
    if (d.empty() || !std::all_of(d.begin(), d.end(), [](char c) { return c >= '0' && c <= '9'; })) {
      bad(name_, fmt::format("header: '{}' in shape is not a dimension (header: {})", digits, shown()));
    }
    if (d.size() > 18) bad(name_, fmt::format("header: absurd dimension {} in shape", digits));
    std::int64_t v = 0;
    for (char c : d) v = v * 10 + (c - '0');
    return v;
  }
  // The header text for messages, shortened: a corrupt header can be a megabyte of noise.
  std::string shown() const {
    std::string s(text_.substr(0, std::min<std::size_t>(text_.size(), 120)));
    while (!s.empty() && (s.back() == ' ' || s.back() == '\n')) s.pop_back();
    for (char& c : s) {
      if (static_cast<unsigned char>(c) < 0x20 || static_cast<unsigned char>(c) >= 0x7f) c = '?';
    }
    return text_.size() > 120 ? s + "..." : s;
  }
  [[noreturn]] void unterminated() const {
    bad(name_, fmt::format("header dict is not terminated (no closing '}}'; header: {})", shown()));
  }

 private:
  std::string_view text_;
  const std::string& name_;
  std::size_t pos_ = 0;
};

// Parses the header dict into h (dtype fields, fortran_order, shape).
void parse_header_dict(std::string_view text, NpyHeader& h, const std::string& name) {
  HeaderScanner s(text, name);
  if (s.at_end() || !s.eat('{')) bad(name, fmt::format("header is not a Python dict (header: {})", s.shown()));
  bool have_descr = false, have_order = false, have_shape = false;
  while (!s.eat('}')) {
    const std::string key = s.string_literal("a header key");
    s.expect(':', fmt::format("after '{}'", key));
    if (key == "descr") {
      if (have_descr) bad(name, "header has two 'descr' entries");
      have_descr = true;
      const char c = s.peek();
      if (c == '[' || c == '(' || c == '{') {
        bad(name,
            fmt::format("structured dtype (a record with named fields) is not supported; popcode reads plain numeric "
                        "and string arrays (header: {})",
                        s.shown()));
      }
      parse_npy_descr(s.string_literal("'descr'"), h, name);
    } else if (key == "fortran_order") {
      if (have_order) bad(name, "header has two 'fortran_order' entries");
      have_order = true;
      const bool quoted = s.peek() == '\'' || s.peek() == '"';  // a string, even 'True', is not a bool
      const std::string v = quoted ? s.string_literal("'fortran_order'") : s.word();
      if (!quoted && v == "True") {
        h.fortran_order = true;
      } else if (!quoted && v == "False") {
        h.fortran_order = false;
      } else {
        bad(name, fmt::format("header: fortran_order is '{}' (expected True or False)", v.empty() ? s.shown() : v));
      }
    } else if (key == "shape") {
      if (have_shape) bad(name, "header has two 'shape' entries");
      have_shape = true;
      s.expect('(', "to open the shape tuple");
      while (!s.eat(')')) {
        if (h.shape.size() >= kMaxDims) bad(name, fmt::format("header: shape has more than {} dimensions", kMaxDims));
        h.shape.push_back(s.integer(npy_shape_string(h.shape)));
        if (!s.eat(',')) {
          s.expect(')', "to close the shape tuple");
          break;
        }
      }
    } else {
      bad(name,
          fmt::format("header: unexpected key '{}' (numpy writes only 'descr', 'fortran_order' and 'shape')", key));
    }
    if (!s.eat(',')) {
      s.expect('}', "to close the header dict");
      break;
    }
  }
  if (!s.at_end()) bad(name, fmt::format("header: text after the closing '}}' (header: {})", s.shown()));
  if (!have_descr || !have_order || !have_shape) {
    bad(name, fmt::format("header lacks '{}' (header: {})",
                          !have_descr   ? "descr"
                          : !have_order ? "fortran_order"
                                        : "shape",
                          s.shown()));
  }
}

template <typename U>
U byteswap(U v) {
  if constexpr (sizeof(U) == 1)
    return v;
  else if constexpr (sizeof(U) == 2)
    return static_cast<U>(__builtin_bswap16(v));
  else if constexpr (sizeof(U) == 4)
    return __builtin_bswap32(v);
  else
    return __builtin_bswap64(v);
}

// Converts n elements stored as T (U: unsigned integer of the same size, used for swapping).
template <typename T, typename U, typename Out>
void convert_as(const unsigned char* raw, std::size_t n, bool swap, Out* out) {
  static_assert(sizeof(T) == sizeof(U));
  if (swap) {
    for (std::size_t i = 0; i < n; ++i) {
      U u;
      std::memcpy(&u, raw + i * sizeof(T), sizeof(T));
      u = byteswap(u);
      T v;
      std::memcpy(&v, &u, sizeof(T));
      out[i] = static_cast<Out>(v);
    }
  } else {
    for (std::size_t i = 0; i < n; ++i) {
      T v;
      std::memcpy(&v, raw + i * sizeof(T), sizeof(T));
      out[i] = static_cast<Out>(v);
    }
  }
}

template <typename Out>
void convert_elements(const NpyHeader& h, const unsigned char* raw, std::size_t n, Out* out) {
  if (n == 0) return;
  if ((h.kind != 'f' && h.kind != 'i' && h.kind != 'u' && h.kind != 'b') || h.item_size < 1 || h.item_size > 8) {
    throw InputError(fmt::format("dtype '{}' (kind '{}', {} bytes) cannot be converted to numbers", h.dtype,
                                 h.kind == 0 ? '?' : h.kind, h.item_size));
  }
  const bool swap = h.item_size > 1 && h.big_endian != (std::endian::native == std::endian::big);
  switch (h.kind * 16 + h.item_size) {
    case 'f' * 16 + 4: return convert_as<float, std::uint32_t>(raw, n, swap, out);
    case 'f' * 16 + 8: return convert_as<double, std::uint64_t>(raw, n, swap, out);
    case 'i' * 16 + 1: return convert_as<std::int8_t, std::uint8_t>(raw, n, false, out);
    case 'i' * 16 + 2: return convert_as<std::int16_t, std::uint16_t>(raw, n, swap, out);
    case 'i' * 16 + 4: return convert_as<std::int32_t, std::uint32_t>(raw, n, swap, out);
    case 'i' * 16 + 8: return convert_as<std::int64_t, std::uint64_t>(raw, n, swap, out);
    case 'u' * 16 + 1: return convert_as<std::uint8_t, std::uint8_t>(raw, n, false, out);
    case 'u' * 16 + 2: return convert_as<std::uint16_t, std::uint16_t>(raw, n, swap, out);
    case 'u' * 16 + 4: return convert_as<std::uint32_t, std::uint32_t>(raw, n, swap, out);
    case 'u' * 16 + 8: return convert_as<std::uint64_t, std::uint64_t>(raw, n, swap, out);
    case 'b' * 16 + 1:
      for (std::size_t i = 0; i < n; ++i) out[i] = raw[i] != 0 ? Out(1) : Out(0);
      return;
    default:
      throw InputError(fmt::format("dtype '{}' (kind '{}', {} bytes) cannot be converted to numbers", h.dtype,
                                   h.kind == 0 ? '?' : h.kind, h.item_size));
  }
}

void append_utf8(std::string& s, std::uint32_t cp) {
  if (cp >= 0xD800 && cp <= 0xDFFF) cp = 0xFFFD;  // a lone surrogate has no UTF-8 form; numpy can hold one
  if (cp < 0x80) {
    s += static_cast<char>(cp);
  } else if (cp < 0x800) {
    s += static_cast<char>(0xC0 | (cp >> 6));
    s += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    s += static_cast<char>(0xE0 | (cp >> 12));
    s += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    s += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    s += static_cast<char>(0xF0 | (cp >> 18));
    s += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    s += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    s += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

void decode_strings(const NpyHeader& h, const unsigned char* raw, std::size_t n, std::vector<std::string>& out,
                    const std::string& name) {
  const std::size_t size = static_cast<std::size_t>(h.item_size);
  out.resize(n);
  for (std::size_t i = 0; i < n; ++i) {
    const unsigned char* p = raw + i * size;
    std::string& s = out[i];
    if (h.kind == 'S') {
      std::size_t len = size;
      while (len > 0 && p[len - 1] == 0) --len;  // numpy pads with NULs and strips them on access
      s.assign(reinterpret_cast<const char*>(p), len);
      continue;
    }
    std::size_t chars = size / 4;
    auto unit = [&](std::size_t k) {
      const unsigned char* q = p + 4 * k;
      return h.big_endian
                 ? (std::uint32_t{q[0]} << 24) | (std::uint32_t{q[1]} << 16) | (std::uint32_t{q[2]} << 8) | q[3]
                 : (std::uint32_t{q[3]} << 24) | (std::uint32_t{q[2]} << 16) | (std::uint32_t{q[1]} << 8) | q[0];
    };
    while (chars > 0 && unit(chars - 1) == 0) --chars;
    for (std::size_t k = 0; k < chars; ++k) {
      const std::uint32_t cp = unit(k);
      if (cp > 0x10FFFF) {
        bad(name, fmt::format("element {} of the {} string array holds 0x{:X}, which is not a Unicode code point", i,
                              h.dtype, cp));
      }
      append_utf8(s, cp);
    }
  }
}

// Reorders v, read in Fortran (column-major) storage order, into C (row-major) order.
template <typename T>
void fortran_to_c(std::vector<T>& v, const std::vector<std::int64_t>& shape) {
  const std::size_t nd = shape.size();
  if (nd < 2 || v.empty()) return;
  std::vector<std::size_t> stride(nd, 1);  // C-order strides
  for (std::size_t d = nd - 1; d-- > 0;) stride[d] = stride[d + 1] * static_cast<std::size_t>(shape[d + 1]);
  std::vector<T> c(v.size());
  std::vector<std::int64_t> idx(nd, 0);
  std::size_t ci = 0;
  for (std::size_t f = 0; f < v.size(); ++f) {
    c[ci] = std::move(v[f]);
    for (std::size_t d = 0; d < nd; ++d) {  // Fortran order: the first index runs fastest
      ci += stride[d];
      if (++idx[d] < shape[d]) break;
      ci -= stride[d] * static_cast<std::size_t>(shape[d]);
      idx[d] = 0;
    }
  }
  v.swap(c);
}

// Opens `path` for reading; the stream is positioned at the start.
std::ifstream open_input(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw InputError(fmt::format("{}: cannot open: {}", path, std::strerror(errno)));
  return in;
}

std::uint64_t file_size(std::ifstream& in, const std::string& path) {
  in.seekg(0, std::ios::end);
  const auto end = in.tellg();
  if (end < 0) throw InputError(fmt::format("{}: cannot determine the file size", path));
  in.seekg(0);
  return static_cast<std::uint64_t>(end);
}

void read_exact(std::ifstream& in, unsigned char* dst, std::size_t n, std::uint64_t offset, const std::string& path) {
  in.clear();
  in.seekg(static_cast<std::streamoff>(offset));
  in.read(reinterpret_cast<char*>(dst), static_cast<std::streamsize>(n));
  if (static_cast<std::size_t>(in.gcount()) != n) {
    throw InputError(
        fmt::format("{}: read of {} bytes at offset {} came up short (file changed while reading?)", path, n, offset));
  }
}

void check_data_present(const NpyHeader& h, std::uint64_t available, const std::string& name, const char* holder) {
  if (h.kind == 'O' || h.data_bytes() <= available) return;
  bad(name, fmt::format("shape {} of {} needs {} data bytes but {} holds {} (truncated?)", npy_shape_string(h.shape),
                        h.dtype, h.data_bytes(), holder, available));
}

[[noreturn]] void object_not_array(const NpyHeader& h, const std::string& name) {
  if (!h.shape.empty()) {
    bad(name, fmt::format("object array of shape {} (dtype {}): popcode reads an object array only as np.save "
                          "writes a dict (shape ())",
                          npy_shape_string(h.shape), h.dtype));
  }
  bad(name, fmt::format("dtype {} holds pickled Python objects (np.save of a dict), not an array", h.dtype));
}

}  // namespace

std::int64_t NpyHeader::count() const {
  std::int64_t n = 1;
  for (std::int64_t d : shape) n *= d;
  return n;
}

std::uint64_t NpyHeader::data_bytes() const {
  return static_cast<std::uint64_t>(count()) * static_cast<std::uint64_t>(item_size);
}

std::string npy_shape_string(const std::vector<std::int64_t>& shape) {
  if (shape.size() == 1) return fmt::format("({},)", shape[0]);
  return fmt::format("({})", fmt::join(shape, ", "));
}

void parse_npy_descr(const std::string& descr, NpyHeader& h, const std::string& name) {
  h.dtype = descr;
  std::string_view rest = descr;
  char order = '=';
  if (!rest.empty() && (rest[0] == '<' || rest[0] == '>' || rest[0] == '|' || rest[0] == '=')) {
    order = rest[0];
    rest.remove_prefix(1);
  }
  const char kind = rest.empty() ? 0 : rest[0];
  const std::string_view digits = rest.empty() ? rest : rest.substr(1);
  auto refuse = [&](std::string_view what) {
    bad(name, fmt::format("dtype '{}' ({}) is not supported; popcode reads f4, f8, i1-i8, u1-u8, b1, U<n> and S<n> "
                          "arrays",
                          descr, what));
  };
  switch (kind) {
    case 'c': refuse("complex"); break;
    case 'M': refuse("datetime64"); break;
    case 'm': refuse("timedelta64"); break;
    case 'V': refuse("void/structured"); break;
    default: break;
  }
  std::int64_t n = -1;
  if (!digits.empty() && digits.size() <= 10 &&
      std::all_of(digits.begin(), digits.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    n = 0;
    for (char c : digits) n = n * 10 + (c - '0');
  }
  h.kind = kind;
  h.big_endian = order == '>' || (order == '=' && std::endian::native == std::endian::big);
  switch (kind) {
    case 'f':
      if (n == 2) refuse("float16");
      if (n == 12 || n == 16) refuse("long double");
      if (n != 4 && n != 8) refuse("unknown float size");
      break;
    case 'i':
    case 'u':
      if (n != 1 && n != 2 && n != 4 && n != 8) refuse("unknown integer size");
      break;
    case 'b':
      if (n != 1) refuse("unknown bool size");
      break;
    case 'U':
      if (n < 1) refuse(n == 0 ? "zero-length string" : "string without a length");
      if (n > (std::int64_t{1} << 28)) refuse("absurdly long strings");
      n *= 4;
      break;
    case 'S':
      if (n < 1) refuse(n == 0 ? "zero-length bytes" : "bytes without a length");
      if (n > (std::int64_t{1} << 30)) refuse("absurdly long strings");
      break;
    case 'O':
      if (!digits.empty() && digits != "8" && digits != "4") refuse("object");
      n = 0;  // the elements are pickled after the header; there is no fixed element size
      break;
    default: refuse("not a numeric or string type"); break;
  }
  h.item_size = static_cast<int>(n);
}

void check_npy_shape(const NpyHeader& h, const std::string& name) {
  if (h.shape.size() > kMaxDims) {
    bad(name, fmt::format("shape has {} dimensions (at most {})", h.shape.size(), kMaxDims));
  }
  std::int64_t total = std::max(h.item_size, 1);
  for (std::int64_t d : h.shape) {
    if (d < 0) bad(name, fmt::format("negative dimension in shape {}", npy_shape_string(h.shape)));
    // Overflow is refused even when a later dimension is 0: no honest writer produces such a shape.
    if (d != 0 && __builtin_mul_overflow(total, d, &total)) {
      bad(name, fmt::format("shape {} of {} describes more than 2^63 bytes (corrupt header?)",
                            npy_shape_string(h.shape), h.dtype));
    }
  }
}

NpyHeader parse_npy_header(std::span<const unsigned char> prefix, const std::string& name) {
  const std::size_t n = prefix.size();
  if (n == 0) bad(name, "file is empty (not a .npy file)");
  if (std::memcmp(prefix.data(), kMagic, std::min<std::size_t>(n, 6)) != 0) {
    bad(name, "not a .npy file (no \\x93NUMPY magic at the start)");
  }
  if (n < 8) bad(name, "truncated inside the \\x93NUMPY magic and version");
  const int major = prefix[6], minor = prefix[7];
  if ((major != 1 && major != 2 && major != 3) || minor != 0) {
    bad(name, fmt::format("unsupported .npy format version {}.{} (popcode reads 1.0, 2.0 and 3.0)", major, minor));
  }
  const std::size_t len_bytes = major == 1 ? 2 : 4;
  if (n < 8 + len_bytes) bad(name, "truncated inside the header length");
  std::size_t header_len = 0;
  for (std::size_t i = 0; i < len_bytes; ++i) header_len |= std::size_t{prefix[8 + i]} << (8 * i);
  if (header_len > kMaxHeaderLen) {
    bad(name, fmt::format("header length {} is larger than the 1 MiB popcode accepts (corrupt file?)", header_len));
  }
  const std::size_t start = 8 + len_bytes;
  if (header_len > n - start) {
    bad(name, fmt::format("header of {} bytes but only {} bytes follow (truncated inside the header?)", header_len,
                          n - start));
  }
  NpyHeader h;
  const std::string_view text(reinterpret_cast<const char*>(prefix.data() + start), header_len);
  parse_header_dict(text, h, name);
  check_npy_shape(h, name);
  h.data_offset = start + header_len;
  return h;
}

std::size_t npy_header_length(std::span<const unsigned char> first) {
  if (first.size() < 8 || std::memcmp(first.data(), kMagic, 6) != 0 || first[6] < 1 || first[6] > 3) {
    return first.size();
  }
  const std::size_t len_bytes = first[6] == 1 ? 2 : 4;
  if (first.size() < 8 + len_bytes) return first.size();
  std::size_t header_len = 0;
  for (std::size_t i = 0; i < len_bytes; ++i) header_len |= std::size_t{first[8 + i]} << (8 * i);
  if (header_len > kMaxHeaderLen) return first.size();
  return 8 + len_bytes + header_len;
}

NpyHeader read_npy_header(const std::string& path) {
  std::ifstream in = open_input(path);
  const std::uint64_t size = file_size(in, path);
  // Magic, version and length field first; then exactly the header they announce (at most kMaxHeaderLen).
  std::vector<unsigned char> prefix(static_cast<std::size_t>(std::min<std::uint64_t>(size, 12)));
  read_exact(in, prefix.data(), prefix.size(), 0, path);
  prefix.resize(static_cast<std::size_t>(std::min<std::uint64_t>(size, npy_header_length(prefix))));
  read_exact(in, prefix.data(), prefix.size(), 0, path);
  NpyHeader h = parse_npy_header(prefix, path);
  check_data_present(h, size - h.data_offset, path, "the file");
  return h;
}

void convert_npy_elements(const NpyHeader& h, const unsigned char* raw, std::size_t n, double* out) {
  convert_elements(h, raw, n, out);
}

void convert_npy_elements(const NpyHeader& h, const unsigned char* raw, std::size_t n, float* out) {
  convert_elements(h, raw, n, out);
}

NpyArray decode_npy_data(const NpyHeader& h, std::span<const unsigned char> data, const std::string& name) {
  if (h.kind == 'O') object_not_array(h, name);
  check_npy_shape(h, name);
  check_data_present(h, data.size(), name, "the data");
  NpyArray a;
  a.shape = h.shape;
  a.dtype = h.dtype;
  a.fortran_order = h.fortran_order;
  const std::size_t n = static_cast<std::size_t>(h.count());
  if (h.kind == 'U' || h.kind == 'S') {
    decode_strings(h, data.data(), n, a.strings, name);
    if (h.fortran_order) fortran_to_c(a.strings, a.shape);
  } else {
    a.values.resize(n);
    convert_npy_elements(h, data.data(), n, a.values.data());
    if (h.fortran_order) fortran_to_c(a.values, a.shape);
  }
  return a;
}

NpyArray parse_npy(std::span<const unsigned char> bytes, const std::string& name) {
  const NpyHeader h = parse_npy_header(bytes, name);
  if (h.kind == 'O') object_not_array(h, name);
  const auto data = bytes.subspan(static_cast<std::size_t>(h.data_offset));
  check_data_present(h, data.size(), name, "the file");
  return decode_npy_data(h, data, name);
}

NpyArray read_npy(const std::string& path) {
  const NpyHeader h = read_npy_header(path);
  if (h.kind == 'O') object_not_array(h, path);
  std::ifstream in = open_input(path);
  const std::size_t n = static_cast<std::size_t>(h.count());
  if (h.kind == 'U' || h.kind == 'S') {
    std::vector<unsigned char> raw(static_cast<std::size_t>(h.data_bytes()));
    read_exact(in, raw.data(), raw.size(), h.data_offset, path);
    return decode_npy_data(h, raw, path);
  }
  // Numbers: convert chunk by chunk so the raw bytes never need a second full-size buffer.
  NpyArray a;
  a.shape = h.shape;
  a.dtype = h.dtype;
  a.fortran_order = h.fortran_order;
  a.values.resize(n);
  const std::size_t item = static_cast<std::size_t>(h.item_size);
  const std::size_t chunk = (std::size_t{4} << 20) / item;
  std::vector<unsigned char> raw(std::min(n, chunk) * item);
  for (std::size_t i = 0; i < n; i += chunk) {
    const std::size_t m = std::min(chunk, n - i);
    read_exact(in, raw.data(), m * item, h.data_offset + i * item, path);
    convert_npy_elements(h, raw.data(), m, a.values.data() + i);
  }
  if (h.fortran_order) fortran_to_c(a.values, a.shape);
  return a;
}

NpyFile parse_npy_file(std::span<const unsigned char> bytes, const std::string& name) {
  const NpyHeader h = parse_npy_header(bytes, name);
  NpyFile f;
  if (h.kind != 'O') {
    f.array = parse_npy(bytes, name);
    return f;
  }
  if (!h.shape.empty()) object_not_array(h, name);
  f.is_dict = true;
  f.dict = parse_pickled_dict(bytes.subspan(static_cast<std::size_t>(h.data_offset)), name);
  return f;
}

NpyFile read_npy_file(const std::string& path) {
  const NpyHeader h = read_npy_header(path);
  NpyFile f;
  if (h.kind != 'O') {
    f.array = read_npy(path);
    return f;
  }
  if (!h.shape.empty()) object_not_array(h, path);
  std::ifstream in = open_input(path);
  const std::uint64_t size = file_size(in, path);
  std::vector<unsigned char> pickle(static_cast<std::size_t>(size - h.data_offset));
  read_exact(in, pickle.data(), pickle.size(), h.data_offset, path);
  f.is_dict = true;
  f.dict = parse_pickled_dict(pickle, path);
  return f;
}

}  // namespace popcode
