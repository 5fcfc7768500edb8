#include "core/util/large_block_cache.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cstdint>
#include <cstring>
#include <thread>

namespace facet {
namespace {

constexpr size_t kMiB = size_t{1} << 20;

// Blocks of 1 MiB and more, at most 8 MiB of them kept: small enough to be quick. Between 2 and 4 MiB sizes round
// up to 256 KiB steps, between 4 and 8 MiB to 512 KiB steps (eight per power of two).
class LargeBlockCacheTest : public ::testing::Test {
 protected:
  LargeBlockCache cache_{1 * kMiB, 8 * kMiB};
};

TEST_F(LargeBlockCacheTest, AFreedBlockIsReusedBySameSizeAllocationsAndOnlyWhileFree) {
  EXPECT_FALSE(cache_.Handles(kMiB - 1));
  EXPECT_TRUE(cache_.Handles(kMiB));
  void* first = cache_.Allocate(3 * kMiB);
  std::memset(first, 1, 3 * kMiB);  // writable, all of it
  ASSERT_TRUE(cache_.Free(first));
  EXPECT_EQ(cache_.stats().cached_bytes, 3 * kMiB);
  void* again = cache_.Allocate(3 * kMiB - 100000);  // rounds up to the same 3 MiB
  EXPECT_EQ(again, first);
  void* other = cache_.Allocate(3 * kMiB);  // the block is in use: new memory
  EXPECT_NE(other, first);
  EXPECT_EQ(cache_.stats().hits, 1);
  EXPECT_EQ(cache_.stats().misses, 2);
  EXPECT_EQ(cache_.stats().cached_bytes, 0u);
  EXPECT_TRUE(cache_.Free(again));
  EXPECT_TRUE(cache_.Free(other));
  EXPECT_FALSE(cache_.Free(other)) << "a block taken back twice";
  int not_ours = 0;
  EXPECT_FALSE(cache_.Free(&not_ours));
}

TEST_F(LargeBlockCacheTest, ABlockFitsAtMostAQuarterLargerRequests) {
  void* big = cache_.Allocate(8 * kMiB);
  ASSERT_TRUE(cache_.Free(big));
  void* small = cache_.Allocate(2 * kMiB);  // the 8 MiB block would waste three quarters of itself
  EXPECT_NE(small, big);
  void* near = cache_.Allocate(7 * kMiB);  // 8 MiB is within a quarter of 7
  EXPECT_EQ(near, big);
  cache_.Free(small);
  cache_.Free(near);
}

TEST_F(LargeBlockCacheTest, CachedBytesStayWithinTheLimitSmallestGivenBackFirst) {
  void* a = cache_.Allocate(2 * kMiB);
  void* b = cache_.Allocate(4 * kMiB);
  void* c = cache_.Allocate(6 * kMiB);
  void* too_big = cache_.Allocate(10 * kMiB);  // above the whole limit: never kept
  cache_.Free(a);
  cache_.Free(b);
  EXPECT_EQ(cache_.stats().cached_bytes, 6 * kMiB);
  cache_.Free(c);  // 12 MiB would be over 8: the 2 and the 4 MiB blocks go
  EXPECT_EQ(cache_.stats().cached_bytes, 6 * kMiB);
  cache_.Free(too_big);
  EXPECT_EQ(cache_.stats().cached_bytes, 6 * kMiB);
  EXPECT_EQ(cache_.Allocate(5 * kMiB), c);
  EXPECT_EQ(cache_.stats().cached_bytes, 0u);
}

TEST(LargeBlockCacheEdges, AnEmptyRequestGetsABlockAndAnImpossibleOneThrowsInsteadOfWrapping) {
  LargeBlockCache cache(0, 8 * kMiB);  // a cache that handles every size, 0 included
  void* empty = cache.Allocate(0);
  EXPECT_NE(empty, nullptr);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(empty) % 64, 0u);
  EXPECT_TRUE(cache.Free(empty));
  // Rounded up to a multiple of 2^60, this size would wrap around to a few bytes.
  EXPECT_THROW(cache.Allocate(SIZE_MAX - 10), c10::Error);
  EXPECT_EQ(cache.stats().cached_bytes, size_t{64} << 10) << "the refused request left the cached block alone";
  EXPECT_EQ(cache.Allocate(1), empty) << "the smallest size class, 64 KiB, serves both";
  EXPECT_TRUE(cache.Free(empty));
}

// What the Trainer and the Predictor install: tensors of 1 MiB and more reuse freed memory, through the tensor API
// and through the raw interface that ATen's oneDNN integration uses, in any thread.
TEST(InstalledLargeBlockCache, LargeTensorsReuseFreedMemoryAndResultsAreUnchanged) {
  InstallLargeBlockCache();  // what ConfigureAllocator installs, whatever FACET_KEEP_MALLOC_DEFAULTS says
  const int64_t floats = (40 * kMiB) / sizeof(float);
  const void* first = nullptr;
  {
    torch::Tensor t = torch::empty({floats});
    first = t.data_ptr();
  }
  const LargeBlockCacheStats before = InstalledLargeBlockCacheStats();
  torch::Tensor reused = torch::empty({floats});
  EXPECT_EQ(reused.data_ptr(), first);
  EXPECT_EQ(InstalledLargeBlockCacheStats().hits, before.hits + 1);

  // Memory that comes back from the cache holds whatever was there: results must not depend on it.
  reused.fill_(std::nanf(""));
  reused = torch::Tensor();
  torch::manual_seed(0);
  const torch::Tensor x = torch::randn({64, 64, 48, 48});  // 37.7 MB (ResNet-18's stem at 96 px): the NaN block
  const torch::Tensor y = torch::relu(x * 2 + 1);
  EXPECT_TRUE(torch::equal(y, torch::relu(x.to(torch::kDouble) * 2 + 1).to(torch::kFloat)));
  // The oneDNN path (raw_allocate and raw_deleter): a blocked-layout round trip of a large tensor.
  EXPECT_TRUE(torch::equal(x.to_mkldnn().to_dense(), x));

  c10::Allocator* allocator = c10::GetAllocator(c10::DeviceType::CPU);
  void* raw = allocator->raw_allocate(64 * kMiB);
  const int64_t misses = InstalledLargeBlockCacheStats().misses;
  allocator->raw_deallocate(raw);
  void* raw_again = allocator->raw_allocate(64 * kMiB);
  EXPECT_EQ(raw_again, raw);
  EXPECT_EQ(InstalledLargeBlockCacheStats().misses, misses);
  allocator->raw_deallocate(raw_again);
  void* small = allocator->raw_allocate(1024);  // below the cache's size: LibTorch's allocator, the same interface
  allocator->raw_deallocate(small);

  // A 2 MiB activation in a thread of its own, as the server's jobs and Predict batches run.
  std::thread([] {
    const int64_t two_mib = (2 * kMiB) / sizeof(float);
    const void* freed = torch::empty({two_mib}).data_ptr();
    EXPECT_EQ(torch::empty({two_mib}).data_ptr(), freed);
  }).join();
}

}  // namespace
}  // namespace facet
