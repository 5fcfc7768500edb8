// Exported models: what a finished run hands to serving, and what Python's torch.load reads. They live with the
// model, so that serving loads one without the trainer. Thread-safe on distinct files.
#pragma once

#include "core/model/arch.h"
#include "core/model/calibration.h"
#include "core/model/multitask_net.h"

#include <c10/core/Device.h>

#include <string>

namespace facet {

// An exported model: a plain dict of tensors that Python's torch.load reads. Keys are the model's state dict
// (`encoder.conv1.weight`, `age_head.4.weight`, ...) plus `log_vars` and metadata as int64 scalars:
// `meta.format_version`, `meta.image_size`, `meta.base_width`. The architecture follows from the keys.
// A calibrated export also holds float64 scalars `calib.gender_temperature`, `calib.ethnicity_temperature`,
// `calib.age_coverage` and `calib.age_log_halfwidth`; without them the model serves uncalibrated.
struct ExportedModelInfo {
  Arch arch = Arch::kResNet34;
  int base_width = 64;
  int image_size = 64;
  Calibration calibration;
};

// `log_variances` are the loss's learned task weights (MultiTaskLossImpl::LogVariances()), kept for Python's
// readers; serving does not use them. Writes atomically; throws std::runtime_error naming the path.
void ExportModel(const std::string& path, MultiTaskNet& model, const at::Tensor& log_variances, int image_size,
                 const Calibration& calibration = {});

// Reads an exported model (architecture inferred from its keys) onto `device`, in eval mode.
// Throws std::runtime_error naming the path and the mismatch on anything that is not a facet export.
MultiTaskNet LoadExportedModel(const std::string& path, c10::Device device, ExportedModelInfo* info = nullptr);

}  // namespace facet
