#include "core/model/state_dict.h"

#include "core/util/file_util.h"

#include <caffe2/serialize/inline_container.h>
#include <torch/csrc/jit/serialization/export.h>
#include <torch/csrc/jit/serialization/pickler.h>
#include <torch/torch.h>

#include <set>
#include <sstream>
#include <stdexcept>

namespace facet {
namespace {

std::string ShapeOf(const at::Tensor& t) {
  std::ostringstream s;
  s << t.sizes();
  return s.str();
}

bool StartsWith(const std::string& s, const std::string& prefix) { return s.rfind(prefix, 0) == 0; }

std::string JoinFirst(const std::vector<std::string>& items, size_t limit) {
  std::string out;
  for (size_t i = 0; i < items.size() && i < limit; ++i) out += (i ? ", " : "") + items[i];
  if (items.size() > limit) out += ", ... (" + std::to_string(items.size()) + " in all)";
  return out;
}

}  // namespace

TensorMap StateDict(const torch::nn::Module& module) {
  TensorMap out;
  for (const auto& item : module.named_parameters(/*recurse=*/true)) out[item.key()] = item.value();
  for (const auto& item : module.named_buffers(/*recurse=*/true)) out[item.key()] = item.value();
  return out;
}

void LoadStateDict(torch::nn::Module& module, const TensorMap& tensors, const LoadOptions& options) {
  TensorMap own = StateDict(module);
  std::vector<std::string> unexpected, mismatched;
  TensorMap matched;
  std::set<std::string> seen;  // own keys present in the file, matched or mis-shaped
  for (const auto& [full_key, tensor] : tensors) {
    if (!StartsWith(full_key, options.source_prefix)) continue;
    const std::string key = full_key.substr(options.source_prefix.size());
    bool ignored = false;
    for (const auto& prefix : options.ignore_prefixes) ignored = ignored || StartsWith(key, prefix);
    if (ignored) continue;
    auto it = own.find(key);
    if (it != own.end()) seen.insert(key);
    if (it == own.end()) {
      unexpected.push_back(full_key);
    } else if (!it->second.sizes().equals(tensor.sizes())) {
      mismatched.push_back(full_key + " (file " + ShapeOf(tensor) + ", model " + ShapeOf(it->second) + ")");
    } else {
      matched[key] = tensor;
    }
  }
  std::vector<std::string> missing;
  for (const auto& [key, tensor] : own) {
    if (!seen.count(key)) missing.push_back(options.source_prefix + key);
  }
  if (!unexpected.empty() || !missing.empty() || !mismatched.empty()) {
    std::string message = "state dict does not match the model:";
    if (!missing.empty()) message += " missing keys [" + JoinFirst(missing, 8) + "];";
    if (!unexpected.empty()) message += " unexpected keys [" + JoinFirst(unexpected, 8) + "];";
    if (!mismatched.empty()) message += " mis-shaped keys [" + JoinFirst(mismatched, 8) + "];";
    message.pop_back();
    throw std::invalid_argument(message);
  }
  torch::NoGradGuard no_grad;
  for (auto& [key, target] : own) target.copy_(matched.at(key));
}

TensorMap ReadTensorFile(const std::string& path) {
  const std::vector<char> bytes = ReadFileBytes(path);
  c10::IValue value;
  try {
    value = torch::pickle_load(bytes);
  } catch (const c10::Error& e) {
    throw std::runtime_error("cannot read tensors from '" + path + "': not a torch.save file of a dict (" +
                             std::string(e.what_without_backtrace()) + ")");
  }
  if (!value.isGenericDict()) {
    throw std::runtime_error("'" + path + "' holds a " + value.tagKind() +
                             ", not a dict of tensors (save dict(model.state_dict()), not the OrderedDict)");
  }
  TensorMap out;
  for (const auto& entry : value.toGenericDict()) {
    if (!entry.key().isString() || !entry.value().isTensor()) {
      throw std::runtime_error("'" + path + "' is not a dict of str -> tensor");
    }
    out[entry.key().toStringRef()] = entry.value().toTensor();
  }
  return out;
}

void WriteTensorFile(const std::string& path, const TensorMap& tensors) {
  c10::Dict<std::string, at::Tensor> dict;
  for (const auto& [key, tensor] : tensors) dict.insert(key, tensor.detach().to(torch::kCPU).contiguous());
  // torch::pickle_save's archive, less its type tag: pickle_save wraps every dict in
  // torch.jit._pickle.restore_type_tag, which torch.load refuses by default from PyTorch 2.6 (weights_only=True).
  // Untagged, the file holds only a dict, strings and tensors, so that any torch.load reads it as it is, and
  // torch::pickle_load still does.
  std::vector<char> pickle;
  torch::jit::Pickler pickler([&](const char* data, size_t size) { pickle.insert(pickle.end(), data, data + size); },
                              /*tensor_table=*/nullptr, /*type_renamer=*/nullptr, /*memoized_class_types=*/nullptr,
                              /*get_tensor_id=*/nullptr, /*tag_aggregates=*/false);
  pickler.protocol();
  pickler.pushIValue(c10::IValue(dict));
  pickler.stop();
  std::vector<char> bytes;
  caffe2::serialize::PyTorchStreamWriter archive([&](const void* data, size_t size) {
    const char* chars = static_cast<const char*>(data);
    bytes.insert(bytes.end(), chars, chars + size);
    return size;
  });
  torch::jit::writeArchiveAndTensors("data", pickle.data(), pickle.size(), pickler.tensorData(), archive);
  archive.writeEndOfFile();
  WriteFileAtomically(path, std::string_view(bytes.data(), bytes.size()));
}

}  // namespace facet
