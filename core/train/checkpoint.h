// Training checkpoints (resume exactly) and model exports (serve, or read from Python).
#pragma once

#include "core/infer/calibration.h"
#include "core/loss/multitask_loss.h"
#include "core/model/multitask_net.h"
#include "core/model/state_dict.h"
#include "core/train/trainer.h"

#include <optional>
#include <string>
#include <vector>

namespace torch::optim {
class Optimizer;
}

namespace facet {

struct CheckpointState {
  int epochs_completed = 0;
  std::vector<EpochMetrics> history;
  std::optional<PartialEpoch> partial;  // set when written mid-epoch: progress into epoch epochs_completed + 1
  int planned_last_epoch = 0;           // a time-budgeted run's plan when written (0: none, or not made yet)
  bool has_averaged_model = false;      // set by LoadCheckpoint: the file held a weight average and it was read
};

// Model, loss parameters, optimizer state, progress and, when there is one, the moving average of the weights
// (`averaged`), written atomically to `path`.
void SaveCheckpoint(const std::string& path, MultiTaskNet& model, MultiTaskLossImpl& loss,
                    torch::optim::Optimizer& optimizer, const CheckpointState& state,
                    MultiTaskNet* averaged = nullptr);

// Restores into already-built objects of the same architecture. Throws std::runtime_error naming the path on a
// missing, truncated or incompatible file; the objects may then be partly overwritten. `averaged` is read when
// given and the file holds one (see has_averaged_model).
CheckpointState LoadCheckpoint(const std::string& path, MultiTaskNet& model, MultiTaskLossImpl& loss,
                               torch::optim::Optimizer& optimizer, MultiTaskNet* averaged = nullptr);

// `epoch-0007.ckpt` (after epoch 7) and `epoch-0007.step-000120.ckpt` (120 steps into epoch 8) style names inside
// a folder: newest first.
std::vector<std::string> ListCheckpoints(const std::string& folder);
std::string CheckpointPath(const std::string& folder, int epoch);
std::string MidEpochCheckpointPath(const std::string& folder, int epochs_completed, int64_t steps);

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

void ExportModel(const std::string& path, MultiTaskNet& model, const MultiTaskLossImpl& loss, int image_size,
                 const Calibration& calibration = {});

// Reads an exported model (architecture inferred from its keys) onto `device`, in eval mode.
// Throws std::runtime_error naming the path and the mismatch on anything that is not a facet export.
MultiTaskNet LoadExportedModel(const std::string& path, c10::Device device, ExportedModelInfo* info = nullptr);

}  // namespace facet
