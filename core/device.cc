#include "core/device.h"

#include <torch/torch.h>

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

}  // namespace facet
