#include "core/util/large_block_cache.h"

#include <c10/core/Allocator.h>
#include <c10/core/impl/alloc_cpu.h>
#include <c10/util/Exception.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <iterator>
#include <mutex>
#include <utility>

namespace facet {
namespace {

constexpr size_t kInstalledMinBlockBytes = size_t{1} << 20;
constexpr size_t kInstalledMaxCachedBytes = size_t{1} << 30;

// Eight sizes per power of two, 64 KiB apart at least: a block is at most an eighth larger than asked for.
size_t RoundUp(size_t bytes) {
  constexpr size_t kMinStep = size_t{64} << 10;
  if (bytes <= kMinStep) return kMinStep;  // 0 too, whose leading zeros are undefined
  const size_t power = size_t{1} << (63 - __builtin_clzll(static_cast<unsigned long long>(bytes)));
  const size_t step = std::max(kMinStep, power / 8);
  // Rounding a size near SIZE_MAX up would wrap to a small block, which the caller would then overrun.
  TORCH_CHECK(bytes <= SIZE_MAX - (step - 1), "cannot allocate ", bytes, " bytes of CPU memory");
  return (bytes + step - 1) / step * step;
}

// LibTorch's CPU allocator with the cache in front for large blocks. ATen's oneDNN integration allocates through the
// raw interface, which needs every DataPtr's context to be its data and one deleter for all of them: so small
// blocks come from the allocator this replaces, wrapped in the same deleter, which tells the two kinds apart.
class CachingCpuAllocator final : public c10::Allocator {
 public:
  explicit CachingCpuAllocator(c10::Allocator* fallback)
      : fallback_(fallback), cache_(kInstalledMinBlockBytes, kInstalledMaxCachedBytes) {}

  // No `override` in this class: LibTorch 1.13 declares allocate const and has no copy_data, later versions (2.3
  // on) the other way round. With both forms of each, it builds against either; clang would warn about an
  // `override` on some of the overriding functions and not the others.
  c10::DataPtr allocate(size_t bytes) const {
    void* data = cache_.Handles(bytes) ? cache_.Allocate(bytes) : fallback_->raw_allocate(bytes);
    return {data, data, &Deallocate, c10::Device(c10::DeviceType::CPU)};
  }
  c10::DataPtr allocate(size_t bytes) { return std::as_const(*this).allocate(bytes); }
  void copy_data(void* dest, const void* src, std::size_t count) const { std::memcpy(dest, src, count); }
  c10::DeleterFnPtr raw_deleter() const { return &Deallocate; }
  LargeBlockCacheStats stats() const { return cache_.stats(); }

  static CachingCpuAllocator* instance;

 private:
  static void Deallocate(void* data) {
    if (data != nullptr && !instance->cache_.Free(data)) instance->fallback_->raw_deallocate(data);
  }

  c10::Allocator* const fallback_;
  mutable LargeBlockCache cache_;
};

CachingCpuAllocator* CachingCpuAllocator::instance = nullptr;

}  // namespace

LargeBlockCache::LargeBlockCache(size_t min_block_bytes, size_t max_cached_bytes)
    : min_block_bytes_(min_block_bytes), max_cached_bytes_(max_cached_bytes) {}

LargeBlockCache::~LargeBlockCache() {
  for (const auto& block : free_) c10::free_cpu(block.second);
}

void* LargeBlockCache::Allocate(size_t bytes) {
  const size_t capacity = RoundUp(bytes);
  {
    std::lock_guard<std::mutex> lock(mutex_);
    auto fit = free_.lower_bound(capacity);
    if (fit != free_.end() && fit->first <= capacity + capacity / 4) {
      fit = std::prev(free_.upper_bound(fit->first));  // of equal blocks the last freed: its pages are the warmest
      void* data = fit->second;
      in_use_.emplace(data, fit->first);
      stats_.cached_bytes -= fit->first;
      free_.erase(fit);
      ++stats_.hits;
      return data;
    }
    ++stats_.misses;
  }
  void* data = nullptr;
  try {
    data = c10::alloc_cpu(capacity);
  } catch (const c10::Error&) {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      while (!free_.empty()) ReleaseLocked(free_.begin());
    }
    data = c10::alloc_cpu(capacity);  // throws again if even that was not enough
  }
  std::lock_guard<std::mutex> lock(mutex_);
  in_use_.emplace(data, capacity);
  return data;
}

bool LargeBlockCache::Free(void* data) {
  std::lock_guard<std::mutex> lock(mutex_);
  const auto block = in_use_.find(data);
  if (block == in_use_.end()) return false;
  const size_t capacity = block->second;
  in_use_.erase(block);
  if (capacity > max_cached_bytes_) {
    c10::free_cpu(data);
    return true;
  }
  while (stats_.cached_bytes + capacity > max_cached_bytes_) ReleaseLocked(free_.begin());
  free_.emplace(capacity, data);
  stats_.cached_bytes += capacity;
  return true;
}

void LargeBlockCache::ReleaseLocked(std::multimap<size_t, void*>::iterator block) {
  stats_.cached_bytes -= block->first;
  c10::free_cpu(block->second);
  free_.erase(block);
}

LargeBlockCacheStats LargeBlockCache::stats() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return stats_;
}

void InstallLargeBlockCache() {
  static std::once_flag once;
  std::call_once(once, [] {
    c10::Allocator* const fallback = c10::GetAllocator(c10::DeviceType::CPU);
    if (fallback->raw_deleter() == nullptr) return;  // not LibTorch's own: someone else manages CPU memory
    // Never destroyed: tensors may outlive every static object, and their deleter calls into it.
    CachingCpuAllocator::instance = new CachingCpuAllocator(fallback);
    // Priority 1: above the default CPU allocator's 0.
    c10::SetAllocator(c10::DeviceType::CPU, CachingCpuAllocator::instance, /*priority=*/1);
  });
}

LargeBlockCacheStats InstalledLargeBlockCacheStats() {
  return CachingCpuAllocator::instance ? CachingCpuAllocator::instance->stats() : LargeBlockCacheStats{};
}

}  // namespace facet
