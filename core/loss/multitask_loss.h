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

// What the age task's loss measures. The model's age output is the scaled log-age either way.
enum class AgeLoss {
  // MSE of the scaled log-age (the reference's): a relative error, so a child's 2 years weigh more than an
  // 80-year-old's 20.
  kLogMse,
  // Mean absolute error in years, divided by kAgeLossYears: the error that age MAE reports, whose minimiser is the
  // median age given the face.
  kYearsL1,
};

// Years per unit of the kYearsL1 loss. 100 puts its gradient at the cross-entropies' scale (about 1 per face at
// age 30, where the log-MSE gives about 0.1), so that no weighting has to learn a factor of 100 first.
inline constexpr double kAgeLossYears = 100.0;

AgeLoss ParseAgeLoss(const std::string& name);  // "log-mse" | "l1-years"
std::string AgeLossName(AgeLoss age_loss);

struct LossConfig {
  LossWeighting weighting = LossWeighting::kUncertainty;
  std::array<double, kNumTasks> fixed_weights = {1.0, 1.0, 1.0};  // used by kFixed only
  AgeLoss age_loss = AgeLoss::kLogMse;
  // Share of each classification target spread evenly over all classes (0: plain cross-entropy). It keeps logits
  // from growing without bound on faces the labels get wrong.
  double label_smoothing = 0.0;
};

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
