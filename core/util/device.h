// Run-time device choice and thread configuration.
#pragma once

#include <c10/core/Device.h>
#include <c10/core/ScalarType.h>

#include <string>

namespace facet {

// "cpu", "cuda", "cuda:N" or "auto" (cuda when available, else cpu). Throws std::invalid_argument on anything
// else, and on a CUDA device that this LibTorch build or machine does not have.
c10::Device ResolveDevice(const std::string& spec);

// Sets LibTorch's intra-op threads; 0 means all hardware threads (LibTorch's own default here is 1).
// Returns the count in force afterwards.
int ConfigureThreads(int threads);

// Mixed precision for the current thread while in scope: matrix products and convolutions in bfloat16 (with
// float32 accumulation), numerically sensitive ops in float32, as torch.autocast(device, torch.bfloat16) does.
// Does nothing when `enabled` is false.
class BFloat16Autocast {
 public:
  BFloat16Autocast(const c10::Device& device, bool enabled);
  ~BFloat16Autocast();
  BFloat16Autocast(const BFloat16Autocast&) = delete;
  BFloat16Autocast& operator=(const BFloat16Autocast&) = delete;

 private:
  bool enabled_, was_enabled_ = false;
  c10::DeviceType device_type_;  // whose autocast state this sets: CUDA's, or the CPU's for any other device
  c10::ScalarType previous_dtype_;
};

// Keeps glibc's malloc from returning tensor-sized blocks to the kernel after every step: by default blocks above
// an adaptive threshold are mmap'ed and unmapped each time, and every step then pays for page faults and zeroing
// (a third of a ResNet-34 training step on 2 CPU cores; docs/benchmarks.md). Raises the mmap threshold to its
// maximum (32 MiB) and the trim threshold to 1 GiB, and puts a LargeBlockCache (core/util/large_block_cache.h) in front
// of LibTorch's CPU allocator for blocks of 1 MiB and more, once per process; called by the Trainer and the
// Predictor. FACET_KEEP_MALLOC_DEFAULTS=1 in the environment leaves both as they are.
void ConfigureAllocator();

}  // namespace facet
