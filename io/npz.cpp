// NumPy .npz reader on top of libzip; see io/npz.hpp for what is accepted.
//
// libzip opens the archive (with ZIP_CHECKCONS, so local headers must agree with the central directory),
// decompresses and checks CRCs. It does not say where a member's bytes start in the file, which a caller needs
// to pread columns of a stored member directly, so this file walks the central directory itself (end record,
// Zip64 end record, entries) to find each stored member's local header, and reads that header for the
// lengths of its name and extra field.
#include "io/npz.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <unistd.h>
#include <zip.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <memory>
#include <optional>

#include "src/errors.hpp"

namespace popcode {
namespace {

// Deflate cannot expand data by more than about 1032:1; a member declaring more is lying (or a zip bomb).
constexpr std::uint64_t kMaxDeflateRatio = 1032;

// Random access to the archive's bytes, for the central-directory walk.
class Bytes {
 public:
  virtual ~Bytes() = default;
  virtual std::uint64_t size() const = 0;
  // Reads n bytes at offset; false if they are not all there.
  virtual bool read(std::uint64_t offset, std::size_t n, unsigned char* dst) const = 0;
};

class BufferBytes : public Bytes {
 public:
  explicit BufferBytes(std::span<const unsigned char> b) : b_(b) {}
  std::uint64_t size() const override { return b_.size(); }
  bool read(std::uint64_t offset, std::size_t n, unsigned char* dst) const override {
    if (offset > b_.size() || n > b_.size() - offset) return false;
    if (n > 0) std::memcpy(dst, b_.data() + offset, n);
    return true;
  }

 private:
  std::span<const unsigned char> b_;
};

class FileBytes : public Bytes {
 public:
  explicit FileBytes(const std::string& path) : fd_(::open(path.c_str(), O_RDONLY)) {
    if (fd_ < 0) throw InputError(fmt::format("{}: cannot open: {}", path, std::strerror(errno)));
    const off_t end = ::lseek(fd_, 0, SEEK_END);
    if (end < 0) {
      ::close(fd_);
      throw InputError(fmt::format("{}: cannot determine the file size: {}", path, std::strerror(errno)));
    }
    size_ = static_cast<std::uint64_t>(end);
  }
  ~FileBytes() override { ::close(fd_); }
  FileBytes(const FileBytes&) = delete;
  FileBytes& operator=(const FileBytes&) = delete;
  std::uint64_t size() const override { return size_; }
  bool read(std::uint64_t offset, std::size_t n, unsigned char* dst) const override {
    if (offset > size_ || n > size_ - offset) return false;
    while (n > 0) {
      const ssize_t got = ::pread(fd_, dst, n, static_cast<off_t>(offset));
      if (got <= 0) return false;
      dst += got;
      n -= static_cast<std::size_t>(got);
      offset += static_cast<std::uint64_t>(got);
    }
    return true;
  }

 private:
  int fd_;
  std::uint64_t size_ = 0;
};

std::uint64_t le(const unsigned char* p, int n) {
  std::uint64_t v = 0;
  for (int k = n - 1; k >= 0; --k) v = (v << 8) | p[k];
  return v;
}

std::string zip_message(int code) {
  zip_error_t e;
  zip_error_init_with_code(&e, code);
  std::string s = zip_error_strerror(&e);
  zip_error_fini(&e);
  return s;
}

// A libzip archive handle, closed without writing anything.
struct ArchiveDeleter {
  void operator()(zip_t* z) const { zip_discard(z); }
};
using Archive = std::unique_ptr<zip_t, ArchiveDeleter>;

struct FileDeleter {
  void operator()(zip_file_t* f) const { zip_fclose(f); }
};

[[noreturn]] void open_failed(const std::string& name, int code) {
  if (code == ZIP_ER_NOZIP || code == ZIP_ER_INCONS || code == ZIP_ER_EOF || code == ZIP_ER_READ ||
      code == ZIP_ER_SEEK || code == ZIP_ER_MULTIDISK || code == ZIP_ER_CRC) {
    throw InputError(fmt::format("{}: not a readable zip archive (.npz): {}", name, zip_message(code)));
  }
  throw InputError(fmt::format("{}: cannot open as a zip archive (.npz): {}", name, zip_message(code)));
}

Archive open_file(const std::string& path) {
  int code = 0;
  zip_t* z = zip_open(path.c_str(), ZIP_RDONLY | ZIP_CHECKCONS, &code);
  if (!z) open_failed(path, code);
  return Archive(z);
}

Archive open_buffer(std::span<const unsigned char> bytes, const std::string& name) {
  zip_error_t err;
  zip_error_init(&err);
  zip_source_t* src = zip_source_buffer_create(bytes.data(), bytes.size(), 0, &err);
  if (!src) {
    const int code = zip_error_code_zip(&err);
    zip_error_fini(&err);
    open_failed(name, code);
  }
  zip_t* z = zip_open_from_source(src, ZIP_RDONLY | ZIP_CHECKCONS, &err);
  if (!z) {
    zip_source_free(src);
    const int code = zip_error_code_zip(&err);
    zip_error_fini(&err);
    open_failed(name, code);
  }
  zip_error_fini(&err);
  return Archive(z);
}

// Where each central-directory entry's local header is, in directory order (the order libzip indexes).
struct DirEntry {
  std::string raw_name;
  std::uint64_t local_offset = 0;
};

[[noreturn]] void bad_directory(const std::string& name, const std::string& what) {
  throw InputError(fmt::format("{}: zip central directory: {}", name, what));
}

std::vector<DirEntry> central_directory(const Bytes& in, const std::string& name) {
  auto bad = [&](const std::string& what) { bad_directory(name, what); };
  const std::uint64_t size = in.size();
  // End of central directory record: 22 bytes plus a comment of up to 65535 bytes at the end of the file.
  const std::size_t tail_len = static_cast<std::size_t>(std::min<std::uint64_t>(size, 22 + 65535));
  std::vector<unsigned char> tail(tail_len);
  if (tail_len < 22 || !in.read(size - tail_len, tail_len, tail.data())) bad("file too short for an end record");
  std::optional<std::size_t> eocd;
  for (std::size_t i = tail_len - 22 + 1; i-- > 0;) {
    const unsigned char* p = tail.data() + i;
    if (p[0] == 'P' && p[1] == 'K' && p[2] == 5 && p[3] == 6 && i + 22 + le(p + 20, 2) <= tail_len) {
      eocd = i;
      break;
    }
  }
  if (!eocd) bad_directory(name, "no end-of-central-directory record");
  const unsigned char* e = tail.data() + *eocd;
  const std::uint64_t eocd_offset = size - tail_len + *eocd;
  std::uint64_t entries = le(e + 10, 2), cd_size = le(e + 12, 4), cd_offset = le(e + 16, 4);
  if (entries == 0xFFFF || cd_size == 0xFFFFFFFF || cd_offset == 0xFFFFFFFF) {
    // Zip64: a locator just before the end record points at the Zip64 end record.
    unsigned char loc[20], rec[56];
    if (eocd_offset < 20 || !in.read(eocd_offset - 20, 20, loc) || le(loc, 4) != 0x07064b50) bad("no Zip64 locator");
    const std::uint64_t rec_offset = le(loc + 8, 8);
    if (!in.read(rec_offset, 56, rec) || le(rec, 4) != 0x06064b50) bad("Zip64 end record missing");
    entries = le(rec + 32, 8);
    cd_size = le(rec + 40, 8);
    cd_offset = le(rec + 48, 8);
  }
  if (cd_offset > size || cd_size > size - cd_offset) bad("directory lies outside the file");
  if (entries > cd_size / 46) bad(fmt::format("{} entries cannot fit in {} bytes", entries, cd_size));
  std::vector<unsigned char> cd(static_cast<std::size_t>(cd_size));
  if (!in.read(cd_offset, cd.size(), cd.data())) bad("cannot read the directory");
  std::vector<DirEntry> out;
  std::size_t pos = 0;
  for (std::uint64_t i = 0; i < entries; ++i) {
    if (cd.size() - pos < 46 || le(cd.data() + pos, 4) != 0x02014b50) bad(fmt::format("entry {} is malformed", i));
    const unsigned char* p = cd.data() + pos;
    const std::size_t name_len = le(p + 28, 2), extra_len = le(p + 30, 2), comment_len = le(p + 32, 2);
    if (cd.size() - pos - 46 < name_len + extra_len + comment_len) bad(fmt::format("entry {} is truncated", i));
    DirEntry d;
    d.raw_name.assign(reinterpret_cast<const char*>(p + 46), name_len);
    d.local_offset = le(p + 42, 4);
    if (d.local_offset == 0xFFFFFFFF) {
      // The real offset is in the Zip64 extra field (id 1), after the sizes that are also saturated.
      const unsigned char* x = p + 46 + name_len;
      const unsigned char* x_end = x + extra_len;
      bool found = false;
      while (x_end - x >= 4) {
        const std::uint64_t id = le(x, 2), len = le(x + 2, 2);
        if (static_cast<std::uint64_t>(x_end - x - 4) < len) break;
        if (id == 1) {
          std::uint64_t skip = (le(p + 24, 4) == 0xFFFFFFFF ? 8 : 0) + (le(p + 20, 4) == 0xFFFFFFFF ? 8 : 0);
          if (skip + 8 <= len) {
            d.local_offset = le(x + 4 + skip, 8);
            found = true;
          }
          break;
        }
        x += 4 + len;
      }
      if (!found) bad(fmt::format("entry {} has no Zip64 offset", i));
    }
    out.push_back(std::move(d));
    pos += 46 + name_len + extra_len + comment_len;
  }
  return out;
}

class NpzReader {
 public:
  NpzReader(Archive z, std::unique_ptr<Bytes> bytes, std::string name)
      : z_(std::move(z)), bytes_(std::move(bytes)), name_(std::move(name)) {}

  std::vector<NpzMember> list() {
    const zip_int64_t n = zip_get_num_entries(z_.get(), 0);
    if (n <= 0) throw InputError(fmt::format("{}: the archive holds no members (an empty .npz)", name_));
    std::vector<NpzMember> out;
    for (zip_int64_t i = 0; i < n; ++i) out.push_back(inspect(static_cast<zip_uint64_t>(i)));
    return out;
  }

  NpyArray read(const std::string& member) {
    const zip_int64_t n = zip_get_num_entries(z_.get(), 0);
    for (zip_int64_t i = 0; i < n; ++i) {
      const char* raw = zip_get_name(z_.get(), static_cast<zip_uint64_t>(i), 0);
      if (!raw) continue;
      const std::string full = raw;
      if (full == member || full == member + ".npy") return read_index(static_cast<zip_uint64_t>(i), full);
    }
    throw InputError(fmt::format("{}: no member '{}' (or '{}.npy') in the archive", name_, member, member));
  }

 private:
  std::string label(const std::string& member) const { return fmt::format("{}: member '{}'", name_, member); }

  [[noreturn]] void zip_failed(zip_file_t* f, const std::string& member, const char* doing) const {
    const int code = zip_error_code_zip(zip_file_get_error(f));
    if (code == ZIP_ER_CRC) {
      throw InputError(fmt::format("{}: CRC mismatch (the member's data is corrupt)", label(member)));
    }
    throw InputError(fmt::format("{}: {} failed: {}", label(member), doing, zip_error_strerror(zip_file_get_error(f))));
  }

  // Reads exactly n bytes of member `full`; fewer means the member ended early.
  void read_exact(zip_file_t* f, unsigned char* dst, std::uint64_t n, std::uint64_t done, const std::string& full,
                  std::uint64_t declared) const {
    while (n > 0) {
      const zip_int64_t got = zip_fread(f, dst, n);
      if (got < 0) zip_failed(f, full, "decompression");
      if (got == 0) {
        throw InputError(fmt::format("{}: member ended after {} of its {} declared bytes (truncated?)", label(full),
                                     done, declared));
      }
      dst += got;
      n -= static_cast<std::uint64_t>(got);
      done += static_cast<std::uint64_t>(got);
    }
  }

  using File = std::unique_ptr<zip_file_t, FileDeleter>;
  File open_member(zip_uint64_t i, const std::string& member) const {
    zip_file_t* f = zip_fopen_index(z_.get(), i, 0);
    if (!f) {
      throw InputError(fmt::format("{}: cannot open: {}", label(member), zip_error_strerror(zip_get_error(z_.get()))));
    }
    return File(f);
  }

  // Name, sizes and npy header of member i, with every size cross-checked.
  NpzMember inspect(zip_uint64_t i) {
    zip_stat_t st;
    zip_stat_init(&st);
    if (zip_stat_index(z_.get(), i, 0, &st) != 0) {
      throw InputError(
          fmt::format("{}: cannot read entry {}: {}", name_, i, zip_error_strerror(zip_get_error(z_.get()))));
    }
    const zip_uint64_t need = ZIP_STAT_NAME | ZIP_STAT_SIZE | ZIP_STAT_COMP_SIZE | ZIP_STAT_COMP_METHOD;
    if ((st.valid & need) != need) throw InputError(fmt::format("{}: entry {} lacks its name or sizes", name_, i));
    const std::string full = st.name;
    const std::string where = label(full);
    NpzMember m;
    m.name = full.size() > 4 && full.compare(full.size() - 4, 4, ".npy") == 0 ? full.substr(0, full.size() - 4) : full;
    m.compressed_size = st.comp_size;
    m.uncompressed_size = st.size;
    if ((st.valid & ZIP_STAT_ENCRYPTION_METHOD) && st.encryption_method != ZIP_EM_NONE) {
      throw InputError(fmt::format("{}: member is encrypted; popcode reads unencrypted archives only", where));
    }
    if (st.comp_method == ZIP_CM_STORE) {
      if (st.size != st.comp_size) {
        throw InputError(
            fmt::format("{}: stored member declares {} bytes but occupies {}", where, st.size, st.comp_size));
      }
    } else if (st.comp_method == ZIP_CM_DEFLATE) {
      m.compressed = true;
      if (st.size / kMaxDeflateRatio > st.comp_size + 1) {
        throw InputError(
            fmt::format("{}: declares {} uncompressed bytes from {} compressed bytes, more than deflate "
                        "can produce (a zip bomb?)",
                        where, st.size, st.comp_size));
      }
    } else {
      throw InputError(
          fmt::format("{}: compression method {} is not supported (popcode reads stored and deflated "
                      "members, as np.savez and np.savez_compressed write)",
                      where, st.comp_method));
    }
    if (st.comp_size > bytes_->size()) {
      throw InputError(
          fmt::format("{}: compressed size {} exceeds the archive's {} bytes", where, st.comp_size, bytes_->size()));
    }

    // The npy header, decompressing no more than it.
    File f = open_member(i, full);
    std::vector<unsigned char> prefix(static_cast<std::size_t>(std::min<std::uint64_t>(st.size, 12)));
    read_exact(f.get(), prefix.data(), prefix.size(), 0, full, st.size);
    const std::size_t header_len =
        static_cast<std::size_t>(std::min<std::uint64_t>(st.size, npy_header_length(prefix)));
    const std::size_t have = prefix.size();
    prefix.resize(std::max(have, header_len));
    read_exact(f.get(), prefix.data() + have, prefix.size() - have, have, full, st.size);
    m.header = parse_npy_header(prefix, where);
    if (m.header.kind != 'O' && m.header.data_bytes() > st.size - m.header.data_offset) {
      throw InputError(fmt::format("{}: shape {} of {} needs {} data bytes but the member holds {} (truncated?)", where,
                                   npy_shape_string(m.header.shape), m.header.dtype, m.header.data_bytes(),
                                   st.size - m.header.data_offset));
    }
    if (!m.compressed) m.data_file_offset = member_data_offset(i, full, st.comp_size) + m.header.data_offset;
    return m;
  }

  // File offset of stored member i's first byte (just past its local header).
  std::uint64_t member_data_offset(zip_uint64_t i, const std::string& member, std::uint64_t comp_size) {
    if (!directory_) directory_ = central_directory(*bytes_, name_);
    const char* raw = zip_get_name(z_.get(), i, ZIP_FL_ENC_RAW);
    if (i >= directory_->size() || !raw || (*directory_)[i].raw_name != raw) {
      throw InputError(
          fmt::format("{}: the central directory does not list this member where libzip does", label(member)));
    }
    const std::uint64_t local = (*directory_)[i].local_offset;
    unsigned char h[30];
    if (!bytes_->read(local, 30, h) || le(h, 4) != 0x04034b50) {
      throw InputError(fmt::format("{}: no local file header at offset {}", label(member), local));
    }
    const std::uint64_t start = local + 30 + le(h + 26, 2) + le(h + 28, 2);
    if (start > bytes_->size() || comp_size > bytes_->size() - start) {
      throw InputError(
          fmt::format("{}: member data at offset {} runs past the end of the archive", label(member), start));
    }
    return start;
  }

  NpyArray read_index(zip_uint64_t i, const std::string& full) {
    const NpzMember m = inspect(i);
    const std::string where = label(full);
    if (m.header.kind == 'O') {
      throw InputError(fmt::format("{}: holds pickled Python objects (dtype {}), not an array", where, m.header.dtype));
    }
    // inspect() bounded data_offset + data_bytes by the declared size, and that by the compressed size.
    File f = open_member(i, full);
    std::vector<unsigned char> all(static_cast<std::size_t>(m.header.data_offset + m.header.data_bytes()));
    read_exact(f.get(), all.data(), all.size(), 0, full, m.uncompressed_size);
    // Read on to the end of the member: libzip verifies the CRC only when the last byte has been delivered.
    std::uint64_t done = all.size();
    unsigned char rest[4096];
    for (;;) {
      const zip_int64_t got = zip_fread(f.get(), rest, sizeof rest);
      if (got < 0) zip_failed(f.get(), full, "decompression");
      if (got == 0) break;
      done += static_cast<std::uint64_t>(got);
    }
    if (done != m.uncompressed_size) {
      throw InputError(fmt::format("{}: member holds {} bytes but declares {}", where, done, m.uncompressed_size));
    }
    return decode_npy_data(
        m.header, std::span<const unsigned char>(all).subspan(static_cast<std::size_t>(m.header.data_offset)), where);
  }

  Archive z_;
  std::unique_ptr<Bytes> bytes_;
  std::string name_;
  std::optional<std::vector<DirEntry>> directory_;
};

NpzReader file_reader(const std::string& path) {
  auto bytes = std::make_unique<FileBytes>(path);  // first, so that a missing file says "cannot open"
  return NpzReader(open_file(path), std::move(bytes), path);
}

NpzReader buffer_reader(std::span<const unsigned char> bytes, const std::string& name) {
  return NpzReader(open_buffer(bytes, name), std::make_unique<BufferBytes>(bytes), name);
}

}  // namespace

std::vector<NpzMember> list_npz(const std::string& path) { return file_reader(path).list(); }

NpyArray read_npz_member(const std::string& path, const std::string& member) { return file_reader(path).read(member); }

std::vector<NpzMember> list_npz_buffer(std::span<const unsigned char> bytes, const std::string& name) {
  return buffer_reader(bytes, name).list();
}

NpyArray read_npz_member_buffer(std::span<const unsigned char> bytes, const std::string& name,
                                const std::string& member) {
  return buffer_reader(bytes, name).read(member);
}

}  // namespace popcode
