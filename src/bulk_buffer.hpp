// Buffers for bulk data (hundreds of MiB per rank) that are filled at once by a read.
//
// The first touch of every fresh 4 KiB page costs a page fault, and on a virtual machine that costs more
// than reading the data: on this project's 2-core VM, 224 MB read with one pread into fresh memory took
// 0.60 s with 4 KiB pages, 0.05-0.26 s with huge pages faulted in by the read, and 0.023 s (touch) +
// 0.043 s (read) with huge pages touched first (cold page cache each time). So large blocks are 2 MiB
// aligned, marked MADV_HUGEPAGE (honoured when /sys/kernel/mm/transparent_hugepage/enabled is
// "madvise" or "always", harmless otherwise) and touched once at allocation. Elements are left as they
// are when value-constructed without arguments (resize(n), vector(n)): the code that fills the buffer
// writes every value it later reads.
#pragma once

#include <sys/mman.h>

#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <new>
#include <utility>
#include <vector>

namespace popcode {

template <typename T>
struct BulkAllocator {
  using value_type = T;
  static constexpr std::size_t kHuge = std::size_t{2} << 20;  // x86-64 huge page
  static constexpr std::size_t kLarge = std::size_t{8} << 20;  // below this, plain operator new

  BulkAllocator() noexcept = default;
  template <typename U>
  BulkAllocator(const BulkAllocator<U>&) noexcept {}

  T* allocate(std::size_t n) {
    const std::size_t bytes = n * sizeof(T);
    if (bytes < kLarge) return static_cast<T*>(::operator new(bytes));
    const std::size_t rounded = (bytes + kHuge - 1) / kHuge * kHuge;
    void* p = std::aligned_alloc(kHuge, rounded);
    if (p == nullptr) throw std::bad_alloc();
    ::madvise(p, rounded, MADV_HUGEPAGE);
    std::memset(p, 0, rounded);  // fault the pages in now, as huge pages where the kernel has them
    return static_cast<T*>(p);
  }
  void deallocate(T* p, std::size_t n) noexcept {
    if (n * sizeof(T) < kLarge) {
      ::operator delete(p);
    } else {
      std::free(p);
    }
  }
  // Default-initialise (no zeroing) on resize(n) / vector(n); any other construction as usual.
  template <typename U>
  void construct(U* p) noexcept {
    ::new (static_cast<void*>(p)) U;
  }
  template <typename U, typename... Args>
  void construct(U* p, Args&&... args) {
    ::new (static_cast<void*>(p)) U(std::forward<Args>(args)...);
  }
  template <typename U>
  bool operator==(const BulkAllocator<U>&) const noexcept {
    return true;
  }
};

// A bulk block of float32 values: uninitialised until filled, huge pages when large.
using FloatBlock = std::vector<float, BulkAllocator<float>>;

}  // namespace popcode
