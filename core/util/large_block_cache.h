// A cache of large CPU memory blocks, so that a training step or an inference batch reuses the memory of the last
// one instead of mapping it afresh.
//
// glibc gives large blocks back to the kernel, and every step then faults in and zeroes their pages again:
// - it maps every block above its mmap threshold (at most 32 MiB, where ConfigureAllocator sets it) on its own, and
//   unmaps it on free. A ResNet-18 step at 128 px in fp32 has activations of 67 MB: the cache takes it from 66.6 to
//   78.2 images/s on 2 cores.
// - in a thread other than the main one (the server trains and serves in threads of its own), it takes memory from
//   64 MiB heaps and unmaps each heap as soon as it is empty, whatever the trim threshold. The recipe of `make
//   accuracy` trained 10% slower in a job thread than in the main thread, with 1.5-2 times the page faults.
// (tests/bench/profile.md.) CUDA LibTorch caches its device memory for the same reason.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <mutex>
#include <unordered_map>

namespace facet {

struct LargeBlockCacheStats {
  size_t cached_bytes = 0;  // freed blocks kept for reuse
  int64_t hits = 0;         // allocations served from those
  int64_t misses = 0;       // allocations that took new memory
};

// Thread-safe. Sizes are rounded up to one of eight per power of two; an allocation reuses a freed block of at least
// its size and at most a quarter more, the smallest such, the last freed of equal ones. Freed blocks are kept up to
// `max_cached_bytes`, the smallest given back first to make room.
class LargeBlockCache {
 public:
  LargeBlockCache(size_t min_block_bytes, size_t max_cached_bytes);
  ~LargeBlockCache();  // gives every cached block back; blocks still in use must not be freed later
  LargeBlockCache(const LargeBlockCache&) = delete;
  LargeBlockCache& operator=(const LargeBlockCache&) = delete;

  // Whether an allocation of `bytes` goes through this cache (else through the allocator it stands in front of).
  bool Handles(size_t bytes) const { return bytes >= min_block_bytes_; }
  // 64-byte aligned, as c10's CPU allocator. Throws c10::Error when the memory cannot be had even after giving back
  // every cached block.
  void* Allocate(size_t bytes);
  // Takes a block back if it came from Allocate and returns true; returns false for any other pointer.
  bool Free(void* data);
  LargeBlockCacheStats stats() const;

 private:
  void ReleaseLocked(std::multimap<size_t, void*>::iterator block);

  const size_t min_block_bytes_, max_cached_bytes_;
  mutable std::mutex mutex_;
  std::multimap<size_t, void*> free_;         // capacity -> block, guarded by mutex_
  std::unordered_map<void*, size_t> in_use_;  // block -> capacity, guarded by mutex_
  LargeBlockCacheStats stats_;                // guarded by mutex_
};

// Puts a LargeBlockCache (blocks of 1 MiB and more, up to 1 GiB of them kept) in front of LibTorch's CPU allocator,
// once per process; ConfigureAllocator (core/util/device.h) calls it. Tensors allocated before keep their own memory.
void InstallLargeBlockCache();
// The installed cache's figures (all zero before InstallLargeBlockCache).
LargeBlockCacheStats InstalledLargeBlockCacheStats();

}  // namespace facet
