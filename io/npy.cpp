#include "io/npy.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <bit>
#include <cstring>
#include <fstream>
#include <limits>
#include <regex>

#include "src/errors.hpp"

namespace popcode {
namespace {

[[noreturn]] void bad(const std::string& name, const std::string& what) {
  throw InputError(fmt::format("{}: not a readable .npy file: {}", name, what));
}

// The value text of `key` in the header dict, e.g. "'<f8'" or "(3, 4)" or "False".
std::string dict_value(const std::string& header, const std::string& key, const std::string& name) {
  const std::string quoted = "'" + key + "'";
  auto pos = header.find(quoted);
  if (pos == std::string::npos) bad(name, fmt::format("header has no '{}' (header: {})", key, header));
  pos = header.find(':', pos + quoted.size());
  if (pos == std::string::npos) bad(name, fmt::format("header entry '{}' has no value", key));
  ++pos;
  while (pos < header.size() && header[pos] == ' ') ++pos;
  std::size_t end = pos;
  if (pos < header.size() && header[pos] == '(') {
    end = header.find(')', pos);
    if (end == std::string::npos) bad(name, "unterminated shape tuple");
    return header.substr(pos, end - pos + 1);
  }
  if (pos < header.size() && (header[pos] == '\'' || header[pos] == '"')) {
    end = header.find(header[pos], pos + 1);
    if (end == std::string::npos) bad(name, "unterminated string in header");
    return header.substr(pos, end - pos + 1);
  }
  while (end < header.size() && header[end] != ',' && header[end] != '}') ++end;
  return header.substr(pos, end - pos);
}

template <typename T>
double load(const unsigned char* p, bool swap) {
  unsigned char buf[sizeof(T)];
  std::memcpy(buf, p, sizeof(T));
  if (swap) std::reverse(buf, buf + sizeof(T));
  T v;
  std::memcpy(&v, buf, sizeof(T));
  return static_cast<double>(v);
}

}  // namespace

NpyArray parse_npy(std::span<const unsigned char> bytes, const std::string& name) {
  static const unsigned char magic[] = {0x93, 'N', 'U', 'M', 'P', 'Y'};
  if (bytes.size() < 10 || std::memcmp(bytes.data(), magic, 6) != 0) bad(name, "missing the \\x93NUMPY magic");
  const int major = bytes[6];
  std::size_t header_len = 0, offset = 0;
  if (major == 1) {
    header_len = bytes[8] | (std::size_t{bytes[9]} << 8);
    offset = 10;
  } else if (major == 2 || major == 3) {
    if (bytes.size() < 12) bad(name, "truncated header");
    header_len = bytes[8] | (std::size_t{bytes[9]} << 8) | (std::size_t{bytes[10]} << 16) | (std::size_t{bytes[11]} << 24);
    offset = 12;
  } else {
    bad(name, fmt::format("unsupported format version {}.{}", major, int(bytes[7])));
  }
  if (offset + header_len > bytes.size()) {
    bad(name, fmt::format("header of {} bytes but the file has {} bytes", header_len, bytes.size()));
  }
  const std::string header(reinterpret_cast<const char*>(bytes.data() + offset), header_len);
  NpyArray a;
  std::string descr = dict_value(header, "descr", name);
  if (descr.size() < 2 || (descr.front() != '\'' && descr.front() != '"')) {
    bad(name, fmt::format("dtype {} is structured or not a plain type; popcode reads numeric arrays only", descr));
  }
  descr = descr.substr(1, descr.size() - 2);
  a.dtype = descr;
  static const std::regex plain("^([<>|=]?)([fiub])([1248])$");
  std::smatch m;
  if (descr.find('O') != std::string::npos) {
    bad(name, "dtype 'O' holds pickled Python objects; convert with numpy first or use `popcode import` (issue 4)");
  }
  if (!std::regex_match(descr, m, plain)) bad(name, fmt::format("unsupported dtype '{}' (expected f4, f8, i1-i8, u1-u8 or b1)", descr));
  const char kind = m[2].str()[0];
  const int size = m[3].str()[0] - '0';
  if (kind == 'f' && size < 4) bad(name, fmt::format("unsupported dtype '{}' (float16)", descr));
  if (kind == 'b' && size != 1) bad(name, fmt::format("unsupported dtype '{}'", descr));
  const bool big = m[1].str() == ">";
  const bool swap = size > 1 && big == (std::endian::native == std::endian::little);

  const std::string order = dict_value(header, "fortran_order", name);
  if (order.find("True") != std::string::npos) a.fortran_order = true;
  else if (order.find("False") == std::string::npos) bad(name, fmt::format("fortran_order is '{}'", order));

  const std::string shape = dict_value(header, "shape", name);
  std::int64_t count = 1;
  static const std::regex dim("\\d+");
  for (auto it = std::sregex_iterator(shape.begin(), shape.end(), dim); it != std::sregex_iterator(); ++it) {
    const std::string digits = it->str();
    if (digits.size() > 15) bad(name, fmt::format("absurd dimension {} in shape {}", digits, shape));
    const std::int64_t d = std::stoll(digits);
    if (d != 0 && count > std::numeric_limits<std::int64_t>::max() / 16 / d) {
      bad(name, fmt::format("shape {} describes more data than any file holds", shape));
    }
    a.shape.push_back(d);
    count *= d;
  }
  const std::size_t data_offset = offset + header_len;
  const std::size_t need = static_cast<std::size_t>(count) * static_cast<std::size_t>(size);
  if (bytes.size() - data_offset < need) {
    bad(name, fmt::format("shape {} of {} needs {} data bytes but the file holds {} (truncated?)", shape, descr, need,
                          bytes.size() - data_offset));
  }
  a.values.resize(static_cast<std::size_t>(count));
  const unsigned char* p = bytes.data() + data_offset;
  for (std::int64_t i = 0; i < count; ++i, p += size) {
    double v = 0;
    switch (kind) {
      case 'f': v = size == 4 ? load<float>(p, swap) : load<double>(p, swap); break;
      case 'b': v = *p != 0 ? 1.0 : 0.0; break;
      case 'i':
        v = size == 1 ? load<std::int8_t>(p, false) : size == 2 ? load<std::int16_t>(p, swap)
          : size == 4 ? load<std::int32_t>(p, swap) : load<std::int64_t>(p, swap);
        break;
      case 'u':
        v = size == 1 ? load<std::uint8_t>(p, false) : size == 2 ? load<std::uint16_t>(p, swap)
          : size == 4 ? load<std::uint32_t>(p, swap) : load<std::uint64_t>(p, swap);
        break;
    }
    a.values[static_cast<std::size_t>(i)] = v;
  }
  if (a.fortran_order && a.shape.size() > 1) {
    // Column-major on disk: transpose to C order.
    std::vector<double> c(a.values.size());
    const std::size_t nd = a.shape.size();
    std::vector<std::int64_t> idx(nd, 0);
    for (std::size_t f = 0; f < c.size(); ++f) {
      std::int64_t ci = 0;
      for (std::size_t d = 0; d < nd; ++d) ci = ci * a.shape[d] + idx[d];
      c[static_cast<std::size_t>(ci)] = a.values[f];
      for (std::size_t d = 0; d < nd; ++d) {  // Fortran order: first index fastest
        if (++idx[d] < a.shape[d]) break;
        idx[d] = 0;
      }
    }
    a.values.swap(c);
  }
  return a;
}

NpyArray read_npy(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw InputError(fmt::format("{}: cannot open file", path));
  std::vector<unsigned char> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  return parse_npy(bytes, path);
}

}  // namespace popcode
