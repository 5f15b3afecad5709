#pragma once
// Byte packing of small replicated structures (metadata read by rank 0 and broadcast to all ranks).
#include <cstdint>
#include <cstring>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

namespace popcode {

class Packer {
 public:
  template <typename T>
    requires std::is_trivially_copyable_v<T>
  void put(const T& v) {
    const auto* p = reinterpret_cast<const char*>(&v);
    bytes_.append(p, sizeof(T));
  }
  void put(const std::string& s) {
    put<std::uint64_t>(s.size());
    bytes_.append(s);
  }
  template <typename T>
  void put(const std::vector<T>& v) {
    put<std::uint64_t>(v.size());
    for (const T& x : v) put(x);
  }
  template <typename T>
  void io(const T& v) {
    put(v);
  }
  const std::string& bytes() const { return bytes_; }

 private:
  std::string bytes_;
};

class Unpacker {
 public:
  explicit Unpacker(const std::string& bytes) : bytes_(bytes) {}
  template <typename T>
    requires std::is_trivially_copyable_v<T>
  void get(T& v) {
    need(sizeof(T));
    std::memcpy(&v, bytes_.data() + pos_, sizeof(T));
    pos_ += sizeof(T);
  }
  void get(std::string& s) {
    std::uint64_t n = 0;
    get(n);
    need(n);
    s.assign(bytes_.data() + pos_, n);
    pos_ += n;
  }
  template <typename T>
  void get(std::vector<T>& v) {
    std::uint64_t n = 0;
    get(n);
    v.resize(n);
    for (T& x : v) get(x);
  }
  template <typename T>
  void io(T& v) {
    get(v);
  }

 private:
  void need(std::size_t n) const {
    if (pos_ + n > bytes_.size()) throw std::runtime_error("Unpacker: truncated buffer");
  }
  const std::string& bytes_;
  std::size_t pos_ = 0;
};

}  // namespace popcode
