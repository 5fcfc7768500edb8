#include "core/train/evaluation.h"

#include "core/train/calibration.h"

#include <torch/torch.h>

#include <cmath>
#include <limits>

namespace facet {
namespace {

constexpr int kLastDecade = 8;  // "80+": UTKFace has few faces past 80

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

// One group's metrics from per-image errors (double, N) and correctness (bool, N).
GroupMetrics Group(const char* dimension, std::string name, const torch::Tensor& mask, const torch::Tensor& age_error,
                   const torch::Tensor& gender_right, const torch::Tensor& ethnicity_right) {
  GroupMetrics g{dimension, std::move(name), mask.sum().item<int64_t>()};
  if (g.n == 0) return g;
  g.age_mae_years = age_error.masked_select(mask).mean().item<double>();
  g.gender_accuracy = gender_right.masked_select(mask).to(torch::kDouble).mean().item<double>();
  g.ethnicity_accuracy = ethnicity_right.masked_select(mask).to(torch::kDouble).mean().item<double>();
  return g;
}

}  // namespace

std::string AgeDecade(int age_years) {
  const int decade = std::clamp(age_years / 10, 0, kLastDecade);
  if (decade == kLastDecade) return std::to_string(10 * decade) + "+";
  return std::to_string(10 * decade) + "-" + std::to_string(10 * decade + 9);
}

LabelledOutputs CollectOutputs(MultiTaskNet& model, BatchSource& source, c10::Device device) {
  const bool was_training = model->is_training();
  model->eval();
  torch::NoGradGuard no_grad;
  std::vector<torch::Tensor> age_pred, gender_logits, ethnicity_logits, age_true, gender_true, ethnicity_true;
  source.StartEpoch(0);
  while (auto batch = source.Next()) {
    const auto out = model->forward(batch->images.to(device, /*non_blocking=*/true));
    age_pred.push_back(out.age.to(torch::kCPU, torch::kFloat));
    gender_logits.push_back(out.gender.to(torch::kCPU, torch::kFloat));
    ethnicity_logits.push_back(out.ethnicity.to(torch::kCPU, torch::kFloat));
    age_true.push_back(batch->age);
    gender_true.push_back(batch->gender);
    ethnicity_true.push_back(batch->ethnicity);
  }
  model->train(was_training);
  if (age_pred.empty()) return {};
  return LabelledOutputs{{torch::cat(age_pred), torch::cat(gender_logits), torch::cat(ethnicity_logits)},
                         torch::cat(age_true), torch::cat(gender_true), torch::cat(ethnicity_true)};
}

EvalMetrics ComputeMetrics(const LabelledOutputs& data, const MultiTaskLossImpl& loss) {
  EvalMetrics m;
  if (data.size() == 0) return m;
  const auto& all = data.outputs;
  const auto task_losses = loss.TaskLosses(all, data.age, data.gender, data.ethnicity);
  m.n = data.size();
  m.loss = loss.Combine(task_losses.to(loss.parameters().empty() ? torch::kCPU : loss.parameters()[0].device()))
               .item<double>();
  for (int i = 0; i < kNumTasks; ++i) m.task_losses[i] = task_losses[i].item<double>();
  m.age_rmse = torch::mse_loss(all.age.to(torch::kDouble), data.age.to(torch::kDouble)).sqrt().item<double>();
  const auto true_years = AgeOutputToYears(data.age, torch::kDouble);
  const auto age_error = (AgeOutputToYears(all.age, torch::kDouble) - true_years).abs();
  m.age_mae_years = age_error.mean().item<double>();
  const auto gender_pred = all.gender.argmax(1), ethnicity_pred = all.ethnicity.argmax(1);
  const auto gender_right = gender_pred == data.gender, ethnicity_right = ethnicity_pred == data.ethnicity;
  m.gender_accuracy = gender_right.to(torch::kDouble).mean().item<double>();
  m.ethnicity_accuracy = ethnicity_right.to(torch::kDouble).mean().item<double>();
  m.gender_class_accuracy = PerClassAccuracy<kNumGenders>(gender_pred, data.gender);
  m.ethnicity_class_accuracy = PerClassAccuracy<kNumEthnicities>(ethnicity_pred, data.ethnicity);
  m.gender_ece = ExpectedCalibrationError(torch::softmax(all.gender, 1), data.gender);
  m.ethnicity_ece = ExpectedCalibrationError(torch::softmax(all.ethnicity, 1), data.ethnicity);

  auto add = [&](const char* dimension, std::string name, const torch::Tensor& mask) {
    auto g = Group(dimension, std::move(name), mask, age_error, gender_right, ethnicity_right);
    if (g.n > 0) m.groups.push_back(std::move(g));
  };
  for (int c = 0; c < kNumEthnicities; ++c) add("ethnicity", kEthnicityNames[c], data.ethnicity == c);
  for (int c = 0; c < kNumGenders; ++c) add("gender", kGenderNames[c], data.gender == c);
  // Targets come from whole years, so rounding recovers them exactly.
  const auto decade = (true_years.round() / 10).floor().clamp(0, kLastDecade).to(torch::kLong);
  for (int d = 0; d <= kLastDecade; ++d) add("age_decade", AgeDecade(10 * d), decade == d);
  return m;
}

EvalMetrics Evaluate(MultiTaskNet& model, const MultiTaskLossImpl& loss, BatchSource& source, c10::Device device) {
  return ComputeMetrics(CollectOutputs(model, source, device), loss);
}

}  // namespace facet
