// Training checkpoints: resume a run exactly. (Exported models for serving are core/model/model_file.h.)
// Thread-safe on distinct files; a checkpoint is written atomically (a crash leaves the old one or the new one).
#pragma once

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

}  // namespace facet
