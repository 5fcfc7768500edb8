// Combining the three task losses into one objective.
#pragma once

#include "core/model/multitask_net.h"

#include <torch/nn/module.h>

#include <array>
#include <memory>
#include <string>

namespace facet {

inline constexpr int kNumTasks = 3;  // age, gender, ethnicity: the order of every per-task array
inline constexpr std::array<const char*, kNumTasks> kTaskNames = {"age", "gender", "ethnicity"};

enum class LossWeighting {
  kUncertainty,      // Kendall, Gal & Cipolla 2018: regression ½e^(-s)L + ½s, classification e^(-s)L + ½s
  kUncertaintySeed,  // the seed's simpler form: Σ e^(-s_i)L_i + s_i
  kEqual,            // Σ L_i
  kFixed,            // Σ w_i L_i with user weights
};

LossWeighting ParseLossWeighting(const std::string& name);  // "uncertainty" | "uncertainty-seed" | "equal" | "fixed"
std::string LossWeightingName(LossWeighting weighting);

struct LossConfig {
  LossWeighting weighting = LossWeighting::kUncertainty;
  std::array<double, kNumTasks> fixed_weights = {1.0, 1.0, 1.0};  // used by kFixed only
};

// Per-task mean losses (3): MSE of the scaled log-age, cross-entropy of gender, cross-entropy of ethnicity.
torch::Tensor TaskLosses(const TaskOutputs& outputs, const torch::Tensor& age_target, const torch::Tensor& gender,
                         const torch::Tensor& ethnicity);

// A weighting of the task losses. Learned weightings own parameters ("log_vars") that belong in the optimizer,
// without weight decay. The total may be negative for the uncertainty forms: that is expected.
class MultiTaskLossImpl : public torch::nn::Module {
 public:
  // task_losses: (3) in kTaskNames order -> scalar total.
  virtual torch::Tensor Combine(const torch::Tensor& task_losses) const = 0;
  // s_i = log σ_i² per task (zeros for fixed weightings).
  virtual torch::Tensor LogVariances() const = 0;
  // The coefficient that multiplies each L_i in the total (e^(-s_i); ½e^(-s) for Kendall's regression term).
  virtual torch::Tensor EffectiveWeights() const = 0;
};

std::shared_ptr<MultiTaskLossImpl> MakeMultiTaskLoss(const LossConfig& config);

}  // namespace facet
