// A bump allocator for one training step's saved tensors and tape nodes. rewind() forgets the
// step's allocations but keeps the memory, so a training loop that repeats the same step
// allocates nothing after its first step (Stan Math's arena).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

namespace pv {

class Arena {
 public:
  explicit Arena(size_t block_bytes = size_t(1) << 20) : block_bytes_(block_bytes) {}
  Arena(const Arena&) = delete;
  Arena& operator=(const Arena&) = delete;

  void* allocate(size_t bytes, size_t align = 64) {
    while (true) {
      if (current_ < blocks_.size()) {
        Block& b = blocks_[current_];
        const uintptr_t base = reinterpret_cast<uintptr_t>(b.data.get());
        const uintptr_t start = (base + offset_ + align - 1) & ~uintptr_t(align - 1);
        if (start + bytes <= base + b.size) {
          offset_ = start + bytes - base;
          return reinterpret_cast<void*>(start);
        }
        ++current_;
        offset_ = 0;
        continue;
      }
      const size_t size = bytes + align > block_bytes_ ? bytes + align : block_bytes_;
      blocks_.push_back({std::unique_ptr<std::byte[]>(new std::byte[size]), size});
    }
  }

  template <class T>
  T* allocate_array(int64_t n) {
    return static_cast<T*>(allocate(sizeof(T) * size_t(n > 0 ? n : 1), alignof(T) > 64 ? alignof(T) : 64));
  }

  void rewind() {
    current_ = 0;
    offset_ = 0;
  }

  size_t block_count() const { return blocks_.size(); }
  size_t bytes_reserved() const {
    size_t total = 0;
    for (const Block& b : blocks_) total += b.size;
    return total;
  }

 private:
  struct Block {
    std::unique_ptr<std::byte[]> data;
    size_t size;
  };
  size_t block_bytes_;
  std::vector<Block> blocks_;
  size_t current_ = 0;
  size_t offset_ = 0;
};

}  // namespace pv
