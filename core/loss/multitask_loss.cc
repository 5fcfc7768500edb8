#include "core/loss/multitask_loss.h"

#include <torch/torch.h>

#include <stdexcept>

namespace facet {
namespace {

// Learned homoscedastic-uncertainty weighting. log_vars start at 0 (every weight 1).
class UncertaintyLoss final : public MultiTaskLossImpl {
 public:
  explicit UncertaintyLoss(bool kendall_form)
      : log_vars_(register_parameter("log_vars", torch::zeros({kNumTasks}))) {
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
  explicit FixedWeightLoss(const std::array<double, kNumTasks>& weights)
      : weights_(torch::tensor({weights[0], weights[1], weights[2]}, torch::kFloat)) {}
  torch::Tensor Combine(const torch::Tensor& task_losses) const override {
    return (weights_.to(task_losses.device()) * task_losses).sum();
  }
  torch::Tensor LogVariances() const override { return torch::zeros({kNumTasks}); }
  torch::Tensor EffectiveWeights() const override { return weights_.clone(); }

 private:
  torch::Tensor weights_;
};

}  // namespace

LossWeighting ParseLossWeighting(const std::string& name) {
  if (name == "uncertainty") return LossWeighting::kUncertainty;
  if (name == "uncertainty-seed") return LossWeighting::kUncertaintySeed;
  if (name == "equal") return LossWeighting::kEqual;
  if (name == "fixed") return LossWeighting::kFixed;
  throw std::invalid_argument("unknown loss weighting '" + name +
                              "' (expected uncertainty, uncertainty-seed, equal or fixed)");
}

std::string LossWeightingName(LossWeighting weighting) {
  switch (weighting) {
    case LossWeighting::kUncertainty: return "uncertainty";
    case LossWeighting::kUncertaintySeed: return "uncertainty-seed";
    case LossWeighting::kEqual: return "equal";
    case LossWeighting::kFixed: return "fixed";
  }
  return "unknown";
}

torch::Tensor TaskLosses(const TaskOutputs& outputs, const torch::Tensor& age_target, const torch::Tensor& gender,
                         const torch::Tensor& ethnicity) {
  return torch::stack({torch::mse_loss(outputs.age, age_target), torch::nn::functional::cross_entropy(outputs.gender, gender),
                       torch::nn::functional::cross_entropy(outputs.ethnicity, ethnicity)});
}

std::shared_ptr<MultiTaskLossImpl> MakeMultiTaskLoss(const LossConfig& config) {
  switch (config.weighting) {
    case LossWeighting::kUncertainty: return std::make_shared<UncertaintyLoss>(/*kendall_form=*/true);
    case LossWeighting::kUncertaintySeed: return std::make_shared<UncertaintyLoss>(/*kendall_form=*/false);
    case LossWeighting::kEqual: return std::make_shared<FixedWeightLoss>(std::array<double, kNumTasks>{1, 1, 1});
    case LossWeighting::kFixed:
      for (double w : config.fixed_weights) {
        if (!(w >= 0.0) || !std::isfinite(w)) throw std::invalid_argument("fixed loss weights must be finite and >= 0");
      }
      return std::make_shared<FixedWeightLoss>(config.fixed_weights);
  }
  throw std::invalid_argument("unknown loss weighting");
}

}  // namespace facet
