// Named tensors in and out of modules and files, in formats Python's torch.save / torch.load share.
// Pure functions, thread-safe on distinct files and modules. They throw std::runtime_error naming the path for a file
// they cannot read or write, std::invalid_argument naming the key for a dict that does not fit the module.
#pragma once

#include <ATen/core/Tensor.h>

#include <map>
#include <string>
#include <vector>

namespace torch::nn {
class Module;
}

namespace facet {

using TensorMap = std::map<std::string, at::Tensor>;

// Parameters and buffers under their dotted names (what Python's module.state_dict() gives).
TensorMap StateDict(const torch::nn::Module& module);

struct LoadOptions {
  std::string source_prefix;                // only keys that start with this are considered; it is stripped
  std::vector<std::string> ignore_prefixes; // keys (after stripping) that are skipped, e.g. torchvision's "fc."
};

// Copies `tensors` into the module's parameters and buffers. All-or-nothing: on any missing, unexpected or
// mis-shaped key it throws std::invalid_argument naming every such key, and the module is left unchanged.
void LoadStateDict(torch::nn::Module& module, const TensorMap& tensors, const LoadOptions& options = {});

// A file written by Python's `torch.save(dict_of_tensors)` (a plain dict, not an OrderedDict) or by
// WriteTensorFile. Throws std::runtime_error naming the path on a missing, unreadable or non-dict file.
TensorMap ReadTensorFile(const std::string& path);

// Writes a dict of tensors that Python reads with torch.load (tensors are moved to CPU). Atomic.
void WriteTensorFile(const std::string& path, const TensorMap& tensors);

}  // namespace facet
