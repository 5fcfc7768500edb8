#include "core/loss/multitask_loss.h"

#include "core/labels.h"

#include <torch/torch.h>

#include <stdexcept>

namespace facet {
namespace {

// Learned homoscedastic-uncertainty weighting. log_vars start at 0 (every weight 1).
class UncertaintyLoss final : public MultiTaskLossImpl {
 public:
  UncertaintyLoss(bool kendall_form, const LossConfig& config)
      : MultiTaskLossImpl(config.age_loss, config.label_smoothing),
        log_vars_(register_parameter("log_vars", torch::zeros({kNumTasks}))) {
    // Kendall's derivation: a Gaussian likelihood gives ½ on the regression term; a softmax with temperature σ²
    // gives 1 on classification terms; every task adds ½ log σ². The seed used 1 and s everywhere.
    scale_ = kendall_form ? torch::tensor({0.5, 1.0, 1.0}) : torch::ones({kNumTasks});
    regulariser_ = kendall_form ? 0.5 : 1.0;
  }
  torch::Tensor Combine(const torch::Tensor& task_losses) const override {
    const auto scale = scale_.to(task_losses.device());
    return (scale * torch::exp(-log_vars_) * task_losses + regulariser_ * log_vars_).sum();
  }
  torch::Tensor LogVariances() const override { return log_vars_.detach(); }
  torch::Tensor EffectiveWeights() const override {
    return scale_.to(log_vars_.device()) * torch::exp(-log_vars_.detach());
  }

 private:
  torch::Tensor log_vars_;
  torch::Tensor scale_;
  double regulariser_;
};

class FixedWeightLoss final : public MultiTaskLossImpl {
 public:
  FixedWeightLoss(const std::array<double, kNumTasks>& weights, const LossConfig& config)
      : MultiTaskLossImpl(config.age_loss, config.label_smoothing),
        weights_(torch::tensor({weights[0], weights[1], weights[2]}, torch::kFloat)) {}
  torch::Tensor Combine(const torch::Tensor& task_losses) const override {
    return (weights_.to(task_losses.device()) * task_losses).sum();
  }
  torch::Tensor LogVariances() const override { return torch::zeros({kNumTasks}); }
  torch::Tensor EffectiveWeights() const override { return weights_.clone(); }

 private:
  torch::Tensor weights_;
};

}  // namespace

torch::Tensor TaskLosses(const TaskOutputs& outputs, const torch::Tensor& age_target, const torch::Tensor& gender,
                         const torch::Tensor& ethnicity, AgeLoss age_loss, double label_smoothing) {
  const torch::Tensor age = age_loss == AgeLoss::kYearsL1
                                ? torch::l1_loss(AgeOutputToYears(outputs.age), AgeOutputToYears(age_target)) /
                                      kAgeLossYears
                                : torch::mse_loss(outputs.age, age_target);
  const auto options = torch::nn::functional::CrossEntropyFuncOptions().label_smoothing(label_smoothing);
  return torch::stack({age, torch::nn::functional::cross_entropy(outputs.gender, gender, options),
                       torch::nn::functional::cross_entropy(outputs.ethnicity, ethnicity, options)});
}

torch::Tensor AgeOutputToYears(const torch::Tensor& scaled_log_age, c10::ScalarType dtype) {
  return torch::exp(scaled_log_age.to(dtype) * kAgeScale);
}

std::shared_ptr<MultiTaskLossImpl> MakeMultiTaskLoss(const LossConfig& config) {
  switch (config.weighting) {
    case LossWeighting::kUncertainty:
      return std::make_shared<UncertaintyLoss>(/*kendall_form=*/true, config);
    case LossWeighting::kUncertaintySeed:
      return std::make_shared<UncertaintyLoss>(/*kendall_form=*/false, config);
    case LossWeighting::kEqual:
      return std::make_shared<FixedWeightLoss>(std::array<double, kNumTasks>{1, 1, 1}, config);
    case LossWeighting::kFixed:
      for (double w : config.fixed_weights) {
        if (!(w >= 0.0) || !std::isfinite(w)) throw std::invalid_argument("fixed loss weights must be finite and >= 0");
      }
      return std::make_shared<FixedWeightLoss>(config.fixed_weights, config);
  }
  throw std::invalid_argument("unknown loss weighting");
}

}  // namespace facet
