#include "core/util/device.h"

#include "core/util/large_block_cache.h"

#include <ATen/autocast_mode.h>
#include <torch/torch.h>
#include <torch/version.h>

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

namespace {

// LibTorch 2.4 keys autocast's state by device type and deprecates the functions named after CUDA and the CPU, which
// then warn at every call.
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 4)
bool AutocastEnabled(c10::DeviceType device) { return at::autocast::is_autocast_enabled(device); }
void SetAutocastEnabled(c10::DeviceType device, bool enabled) { at::autocast::set_autocast_enabled(device, enabled); }
c10::ScalarType AutocastDtype(c10::DeviceType device) { return at::autocast::get_autocast_dtype(device); }
void SetAutocastDtype(c10::DeviceType device, c10::ScalarType dtype) {
  at::autocast::set_autocast_dtype(device, dtype);
}
#else
bool AutocastEnabled(c10::DeviceType device) {
  return device == c10::kCUDA ? at::autocast::is_enabled() : at::autocast::is_cpu_enabled();
}
void SetAutocastEnabled(c10::DeviceType device, bool enabled) {
  if (device == c10::kCUDA) {
    at::autocast::set_enabled(enabled);
  } else {
    at::autocast::set_cpu_enabled(enabled);
  }
}
c10::ScalarType AutocastDtype(c10::DeviceType device) {
  return device == c10::kCUDA ? at::autocast::get_autocast_gpu_dtype() : at::autocast::get_autocast_cpu_dtype();
}
void SetAutocastDtype(c10::DeviceType device, c10::ScalarType dtype) {
  if (device == c10::kCUDA) {
    at::autocast::set_autocast_gpu_dtype(dtype);
  } else {
    at::autocast::set_autocast_cpu_dtype(dtype);
  }
}
#endif

}  // namespace

BFloat16Autocast::BFloat16Autocast(const c10::Device& device, bool enabled)
    : enabled_(enabled),
      device_type_(device.is_cuda() ? c10::kCUDA : c10::kCPU),
      previous_dtype_(c10::ScalarType::Float) {
  if (!enabled_) return;
  was_enabled_ = AutocastEnabled(device_type_);
  previous_dtype_ = AutocastDtype(device_type_);
  SetAutocastEnabled(device_type_, true);
  SetAutocastDtype(device_type_, at::kBFloat16);
  at::autocast::increment_nesting();
}

BFloat16Autocast::~BFloat16Autocast() {
  if (!enabled_) return;
  // Casts of the weights are cached while nested.
  if (at::autocast::decrement_nesting() == 0) at::autocast::clear_cache();
  SetAutocastEnabled(device_type_, was_enabled_);
  SetAutocastDtype(device_type_, previous_dtype_);
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
