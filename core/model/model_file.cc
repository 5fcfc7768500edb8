#include "core/model/model_file.h"

#include "core/model/state_dict.h"

#include <torch/torch.h>

#include <cmath>
#include <stdexcept>

namespace facet {
namespace {

constexpr int64_t kExportFormatVersion = 1;

int64_t ScalarOf(const TensorMap& tensors, const std::string& key, const std::string& path) {
  auto it = tensors.find(key);
  if (it == tensors.end() || it->second.numel() != 1) {
    throw std::runtime_error("'" + path + "' is not a facet model export: no scalar '" + key + "'");
  }
  return it->second.item<int64_t>();
}

// An optional float metadata scalar: `fallback` when absent.
double OptionalScalarOf(const TensorMap& tensors, const std::string& key, double fallback, const std::string& path) {
  auto it = tensors.find(key);
  if (it == tensors.end()) return fallback;
  if (it->second.numel() != 1) throw std::runtime_error("'" + path + "': '" + key + "' is not a scalar");
  return it->second.item<double>();
}

Calibration CalibrationOf(const TensorMap& tensors, const std::string& path) {
  Calibration c;
  c.gender_temperature = OptionalScalarOf(tensors, "calib.gender_temperature", 1.0, path);
  c.ethnicity_temperature = OptionalScalarOf(tensors, "calib.ethnicity_temperature", 1.0, path);
  c.age_coverage = OptionalScalarOf(tensors, "calib.age_coverage", 0.0, path);
  c.age_log_halfwidth = OptionalScalarOf(tensors, "calib.age_log_halfwidth", 0.0, path);
  const bool valid = c.gender_temperature > 0 && c.ethnicity_temperature > 0 && c.age_coverage >= 0 &&
                     c.age_coverage < 1 && c.age_log_halfwidth >= 0 && std::isfinite(c.gender_temperature) &&
                     std::isfinite(c.ethnicity_temperature) && std::isfinite(c.age_log_halfwidth);
  if (!valid) throw std::runtime_error("'" + path + "': invalid calibration metadata");
  return c;
}

Arch ArchFromKeys(const TensorMap& tensors) {
  if (tensors.count("encoder.layer1.0.conv3.weight")) return Arch::kResNet50;
  return tensors.count("encoder.layer3.2.conv1.weight") ? Arch::kResNet34 : Arch::kResNet18;
}

}  // namespace

void ExportModel(const std::string& path, MultiTaskNet& model, const at::Tensor& log_variances, int image_size,
                 const Calibration& calibration) {
  TensorMap tensors = StateDict(*model);
  tensors["log_vars"] = log_variances.detach().to(torch::kCPU, torch::kFloat);
  tensors["meta.format_version"] = torch::tensor(kExportFormatVersion);
  tensors["meta.image_size"] = torch::tensor(static_cast<int64_t>(image_size));
  tensors["meta.base_width"] = torch::tensor(static_cast<int64_t>(model->options().base_width));
  tensors["calib.gender_temperature"] = torch::tensor(calibration.gender_temperature, torch::kDouble);
  tensors["calib.ethnicity_temperature"] = torch::tensor(calibration.ethnicity_temperature, torch::kDouble);
  tensors["calib.age_coverage"] = torch::tensor(calibration.age_coverage, torch::kDouble);
  tensors["calib.age_log_halfwidth"] = torch::tensor(calibration.age_log_halfwidth, torch::kDouble);
  WriteTensorFile(path, tensors);
}

MultiTaskNet LoadExportedModel(const std::string& path, c10::Device device, ExportedModelInfo* info) {
  const TensorMap tensors = ReadTensorFile(path);
  const int64_t version = ScalarOf(tensors, "meta.format_version", path);
  if (version != kExportFormatVersion) {
    throw std::runtime_error("'" + path + "': unsupported export format version " + std::to_string(version));
  }
  ExportedModelInfo meta{ArchFromKeys(tensors), static_cast<int>(ScalarOf(tensors, "meta.base_width", path)),
                         static_cast<int>(ScalarOf(tensors, "meta.image_size", path)), Calibration{}};
  if (meta.base_width < 1 || meta.image_size < 1) throw std::runtime_error("'" + path + "': invalid metadata");
  meta.calibration = CalibrationOf(tensors, path);
  MultiTaskNet model(ResNetOptions{meta.arch, meta.base_width});
  TensorMap weights;
  for (const auto& [key, tensor] : tensors) {
    if (key.rfind("meta.", 0) != 0 && key.rfind("calib.", 0) != 0 && key != "log_vars") weights[key] = tensor;
  }
  try {
    LoadStateDict(*model, weights);
  } catch (const std::invalid_argument& e) {
    throw std::runtime_error("'" + path + "': " + e.what());
  }
  model->to(device);
  model->eval();
  if (info) *info = meta;
  return model;
}

}  // namespace facet
