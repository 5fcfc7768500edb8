// Run-time device choice and thread configuration.
#pragma once

#include <c10/core/Device.h>

#include <string>

namespace facet {

// "cpu", "cuda", "cuda:N" or "auto" (cuda when available, else cpu). Throws std::invalid_argument on anything
// else, and on a CUDA device that this LibTorch build or machine does not have.
c10::Device ResolveDevice(const std::string& spec);

// Sets LibTorch's intra-op threads; 0 means all hardware threads (LibTorch's own default here is 1).
// Returns the count in force afterwards.
int ConfigureThreads(int threads);

}  // namespace facet
