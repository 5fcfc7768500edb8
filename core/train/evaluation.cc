#include "core/train/evaluation.h"

#include <torch/torch.h>

#include <cmath>
#include <limits>

namespace facet {
namespace {

template <size_t N>
std::array<double, N> PerClassAccuracy(const torch::Tensor& predicted, const torch::Tensor& truth) {
  std::array<double, N> out{};
  for (size_t c = 0; c < N; ++c) {
    const auto mask = truth == static_cast<int64_t>(c);
    const int64_t count = mask.sum().item<int64_t>();
    out[c] = count == 0 ? std::numeric_limits<double>::quiet_NaN()
                        : (predicted.masked_select(mask) == static_cast<int64_t>(c)).sum().item<double>() / count;
  }
  return out;
}

}  // namespace

EvalMetrics Evaluate(MultiTaskNet& model, const MultiTaskLossImpl& loss, BatchSource& source, c10::Device device) {
  const bool was_training = model->is_training();
  model->eval();
  torch::NoGradGuard no_grad;
  std::vector<torch::Tensor> age_pred, gender_logits, ethnicity_logits, age_true, gender_true, ethnicity_true;
  source.StartEpoch(0);
  while (auto batch = source.Next()) {
    const auto out = model->forward(batch->images.to(device, /*non_blocking=*/true));
    age_pred.push_back(out.age.to(torch::kCPU));
    gender_logits.push_back(out.gender.to(torch::kCPU));
    ethnicity_logits.push_back(out.ethnicity.to(torch::kCPU));
    age_true.push_back(batch->age);
    gender_true.push_back(batch->gender);
    ethnicity_true.push_back(batch->ethnicity);
  }
  model->train(was_training);
  EvalMetrics m;
  if (age_pred.empty()) return m;

  const TaskOutputs all{torch::cat(age_pred), torch::cat(gender_logits), torch::cat(ethnicity_logits)};
  const auto age = torch::cat(age_true), gender = torch::cat(gender_true), ethnicity = torch::cat(ethnicity_true);
  const auto task_losses = TaskLosses(all, age, gender, ethnicity);
  m.n = age.size(0);
  m.loss = loss.Combine(task_losses.to(loss.parameters().empty() ? torch::kCPU : loss.parameters()[0].device()))
               .item<double>();
  for (int i = 0; i < kNumTasks; ++i) m.task_losses[i] = task_losses[i].item<double>();
  m.age_rmse = std::sqrt(m.task_losses[0]);
  m.age_mae_years = (torch::exp(all.age.to(torch::kDouble) * kAgeScale) - torch::exp(age.to(torch::kDouble) * kAgeScale))
                        .abs()
                        .mean()
                        .item<double>();
  const auto gender_pred = all.gender.argmax(1), ethnicity_pred = all.ethnicity.argmax(1);
  m.gender_accuracy = (gender_pred == gender).to(torch::kDouble).mean().item<double>();
  m.ethnicity_accuracy = (ethnicity_pred == ethnicity).to(torch::kDouble).mean().item<double>();
  m.gender_class_accuracy = PerClassAccuracy<kNumGenders>(gender_pred, gender);
  m.ethnicity_class_accuracy = PerClassAccuracy<kNumEthnicities>(ethnicity_pred, ethnicity);
  return m;
}

}  // namespace facet
