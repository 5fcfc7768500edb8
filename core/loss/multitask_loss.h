// Combining the three task losses into one objective.
// Modules are not thread-safe (like every torch::nn::Module): one training thread uses one. MakeMultiTaskLoss
// throws std::invalid_argument for fixed weights that are negative or all 0.
#pragma once

#include "core/loss/loss_config.h"
#include "core/model/multitask_net.h"

#include <torch/nn/module.h>

#include <array>
#include <memory>
#include <string>

namespace facet {

// Per-task mean losses (3): the age loss (see AgeLoss), cross-entropy of gender, cross-entropy of ethnicity (with
// label_smoothing). age_target is the scaled log-age, as the model's age output.
torch::Tensor TaskLosses(const TaskOutputs& outputs, const torch::Tensor& age_target, const torch::Tensor& gender,
                         const torch::Tensor& ethnicity, AgeLoss age_loss, double label_smoothing = 0.0);

// Years from the model's age output (the scaled log-age), in float or wider: exp() under bf16 would round 80 years
// to the nearest 0.5.
torch::Tensor AgeOutputToYears(const torch::Tensor& scaled_log_age, c10::ScalarType dtype = c10::ScalarType::Float);

// A weighting of the task losses. Learned weightings own parameters ("log_vars") that belong in the optimizer,
// without weight decay. The total may be negative for the uncertainty forms: that is expected.
class MultiTaskLossImpl : public torch::nn::Module {
 public:
  MultiTaskLossImpl(AgeLoss age_loss, double label_smoothing)
      : age_loss_(age_loss), label_smoothing_(label_smoothing) {}
  // The per-task losses this objective combines: TaskLosses with its age loss and label smoothing.
  torch::Tensor TaskLosses(const TaskOutputs& outputs, const torch::Tensor& age_target, const torch::Tensor& gender,
                           const torch::Tensor& ethnicity) const {
    return facet::TaskLosses(outputs, age_target, gender, ethnicity, age_loss_, label_smoothing_);
  }
  AgeLoss age_loss() const { return age_loss_; }
  double label_smoothing() const { return label_smoothing_; }
  // task_losses: (3) in kTaskNames order -> scalar total.
  virtual torch::Tensor Combine(const torch::Tensor& task_losses) const = 0;
  // s_i = log σ_i² per task (zeros for fixed weightings).
  virtual torch::Tensor LogVariances() const = 0;
  // The coefficient that multiplies each L_i in the total (e^(-s_i); ½e^(-s) for Kendall's regression term).
  virtual torch::Tensor EffectiveWeights() const = 0;

 private:
  AgeLoss age_loss_;
  double label_smoothing_;
};

std::shared_ptr<MultiTaskLossImpl> MakeMultiTaskLoss(const LossConfig& config);

}  // namespace facet
