#include "core/device.h"

#include "core/large_block_cache.h"

#include <ATen/autocast_mode.h>
#include <torch/torch.h>

#include <malloc.h>

#include <cstdlib>
#include <mutex>
#include <stdexcept>
#include <thread>

namespace facet {

c10::Device ResolveDevice(const std::string& spec) {
  if (spec == "auto" || spec.empty()) {
    return torch::cuda::is_available() ? c10::Device(c10::kCUDA, 0) : c10::Device(c10::kCPU);
  }
  if (spec != "cpu" && spec.rfind("cuda", 0) != 0) {
    throw std::invalid_argument("device '" + spec + "' is not one of cpu, cuda, cuda:N, auto");
  }
  c10::Device device(c10::kCPU);
  try {
    device = c10::Device(spec);
  } catch (const c10::Error&) {
    throw std::invalid_argument("device '" + spec + "' is not one of cpu, cuda, cuda:N, auto");
  }
  if (device.is_cuda()) {
    if (!torch::cuda::is_available()) {
      throw std::invalid_argument("device '" + spec + "' requested but CUDA is not available in this build/machine");
    }
    const int index = device.has_index() ? device.index() : 0;
    if (index >= static_cast<int>(torch::cuda::device_count())) {
      throw std::invalid_argument("device '" + spec + "': only " + std::to_string(torch::cuda::device_count()) +
                                  " CUDA device(s) present");
    }
  }
  return device;
}

int ConfigureThreads(int threads) {
  if (threads < 0) throw std::invalid_argument("threads must be >= 0 (0 = all cores), got " + std::to_string(threads));
  const int n = threads == 0 ? std::max(1u, std::thread::hardware_concurrency()) : threads;
  torch::set_num_threads(n);
  return torch::get_num_threads();
}

BFloat16Autocast::BFloat16Autocast(const c10::Device& device, bool enabled)
    : enabled_(enabled), cuda_(device.is_cuda()), previous_dtype_(c10::ScalarType::Float) {
  if (!enabled_) return;
  namespace ac = at::autocast;
  was_enabled_ = cuda_ ? ac::is_enabled() : ac::is_cpu_enabled();
  previous_dtype_ = cuda_ ? ac::get_autocast_gpu_dtype() : ac::get_autocast_cpu_dtype();
  if (cuda_) {
    ac::set_enabled(true);
    ac::set_autocast_gpu_dtype(at::kBFloat16);
  } else {
    ac::set_cpu_enabled(true);
    ac::set_autocast_cpu_dtype(at::kBFloat16);
  }
  ac::increment_nesting();
}

BFloat16Autocast::~BFloat16Autocast() {
  if (!enabled_) return;
  namespace ac = at::autocast;
  if (ac::decrement_nesting() == 0) ac::clear_cache();  // casts of the weights are cached while nested
  if (cuda_) {
    ac::set_enabled(was_enabled_);
    ac::set_autocast_gpu_dtype(previous_dtype_);
  } else {
    ac::set_cpu_enabled(was_enabled_);
    ac::set_autocast_cpu_dtype(previous_dtype_);
  }
}

void ConfigureAllocator() {
  static std::once_flag once;
  std::call_once(once, [] {
    const char* keep = std::getenv("FACET_KEEP_MALLOC_DEFAULTS");
    if (keep && *keep && std::string(keep) != "0") return;
#if defined(__GLIBC__)
    mallopt(M_MMAP_THRESHOLD, 32 << 20);  // glibc's upper bound for this setting on 64-bit
    mallopt(M_TRIM_THRESHOLD, 1 << 30);
#endif
    InstallLargeBlockCache();  // blocks of 1 MiB and more: kept for reuse in every thread
  });
}

}  // namespace facet
