#include "core/loss/multitask_loss.h"

#include "core/labels.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

namespace facet {
namespace {

torch::Tensor SetLogVars(MultiTaskLossImpl& loss, std::vector<float> values) {
  torch::NoGradGuard no_grad;
  auto s = loss.named_parameters()["log_vars"];
  s.copy_(torch::tensor(values));
  return s;
}

TEST(UncertaintyLoss, KendallGradientsMatchTheClosedForm) {
  auto loss = MakeMultiTaskLoss({LossWeighting::kUncertainty});
  const std::vector<float> s = {0.3f, -0.7f, 1.1f};
  auto log_vars = SetLogVars(*loss, s);
  const auto L = torch::tensor({0.8, 1.7, 0.4}, torch::kFloat);
  loss->Combine(L).backward();
  const auto grad = log_vars.grad();
  // d/ds [½e^(-s)L + ½s] = -½e^(-s)L + ½ (regression); d/ds [e^(-s)L + ½s] = -e^(-s)L + ½ (classification)
  EXPECT_NEAR(grad[0].item<float>(), -0.5 * std::exp(-0.3) * 0.8 + 0.5, 1e-6);
  EXPECT_NEAR(grad[1].item<float>(), -std::exp(0.7) * 1.7 + 0.5, 1e-5);
  EXPECT_NEAR(grad[2].item<float>(), -std::exp(-1.1) * 0.4 + 0.5, 1e-6);
  // The optimum of each term is s* = log(c·L): the learned weight balances the task's loss.
  EXPECT_NEAR(loss->EffectiveWeights()[0].item<float>(), 0.5 * std::exp(-0.3), 1e-6);
}

TEST(UncertaintyLoss, SeedFormGradientsMatchTheClosedForm) {
  auto loss = MakeMultiTaskLoss({LossWeighting::kUncertaintySeed});
  auto log_vars = SetLogVars(*loss, {0.2f, 0.5f, -0.4f});
  const auto L = torch::tensor({0.9, 0.3, 2.0}, torch::kFloat);
  loss->Combine(L).backward();
  const std::vector<double> s = {0.2, 0.5, -0.4}, l = {0.9, 0.3, 2.0};
  for (int i = 0; i < 3; ++i) EXPECT_NEAR(log_vars.grad()[i].item<float>(), -std::exp(-s[i]) * l[i] + 1, 1e-5);
}

TEST(UncertaintyLoss, AtZeroLogVariancesReducesToTheTaskSum) {
  const auto L = torch::tensor({0.9, 0.3, 2.0}, torch::kFloat);
  EXPECT_NEAR(MakeMultiTaskLoss({LossWeighting::kUncertaintySeed})->Combine(L).item<float>(), 3.2, 1e-6);
  // Kendall's form keeps its ½ on the regression term.
  EXPECT_NEAR(MakeMultiTaskLoss({LossWeighting::kUncertainty})->Combine(L).item<float>(), 0.45 + 2.3, 1e-6);
  EXPECT_NEAR(MakeMultiTaskLoss({LossWeighting::kEqual})->Combine(L).item<float>(), 3.2, 1e-6);
}

TEST(UncertaintyLoss, TotalMayBeNegativeAndWeightsAreReportedApart) {
  auto loss = MakeMultiTaskLoss({LossWeighting::kUncertaintySeed});
  SetLogVars(*loss, {-3.0f, -3.0f, -3.0f});
  EXPECT_LT(loss->Combine(torch::tensor({0.01f, 0.01f, 0.01f})).item<float>(), 0.0f);
  EXPECT_TRUE(torch::allclose(loss->LogVariances(), torch::full({3}, -3.0f)));
  EXPECT_TRUE(torch::allclose(loss->EffectiveWeights(), torch::full({3}, std::exp(3.0f))));
}

TEST(FixedWeightLoss, UsesTheUsersWeightsAndLearnsNothing) {
  LossConfig config{LossWeighting::kFixed, {2.0, 0.5, 1.0}};
  auto loss = MakeMultiTaskLoss(config);
  EXPECT_TRUE(loss->parameters().empty());
  EXPECT_NEAR(loss->Combine(torch::tensor({1.0f, 2.0f, 3.0f})).item<float>(), 2 + 1 + 3, 1e-6);
  EXPECT_THROW(MakeMultiTaskLoss({LossWeighting::kFixed, {1.0, -1.0, 1.0}}), std::invalid_argument);
}

TEST(LossWeighting, ParsesItsNames) {
  for (auto w : {LossWeighting::kUncertainty, LossWeighting::kUncertaintySeed, LossWeighting::kEqual,
                 LossWeighting::kFixed}) {
    EXPECT_EQ(ParseLossWeighting(LossWeightingName(w)), w);
  }
  EXPECT_THROW(ParseLossWeighting("gradnorm"), std::invalid_argument);
}

TEST(TaskLosses, AreMseAndCrossEntropies) {
  TaskOutputs out{torch::tensor({0.5f, 0.7f}), torch::tensor({{2.0f, 0.0f}, {0.0f, 1.0f}}),
                  torch::zeros({2, 5})};
  const auto l = TaskLosses(out, torch::tensor({0.4f, 0.9f}), torch::tensor({0L, 1L}), torch::tensor({3L, 0L}),
                            AgeLoss::kLogMse);
  EXPECT_NEAR(l[0].item<float>(), (0.01 + 0.04) / 2, 1e-6);
  EXPECT_NEAR(l[1].item<float>(), (std::log(1 + std::exp(-2.0)) + std::log(1 + std::exp(-1.0))) / 2, 1e-6);
  EXPECT_NEAR(l[2].item<float>(), std::log(5.0), 1e-6);
}

TEST(TaskLosses, YearsL1IsTheMeanAbsoluteErrorInYears) {
  // Ages 30 and 70 predicted as 25 and 80: errors of 5 and 10 years.
  auto scaled = [](std::vector<float> years) { return torch::log(torch::tensor(years)) / kAgeScale; };
  TaskOutputs out{scaled({25.0f, 80.0f}), torch::zeros({2, 2}), torch::zeros({2, 5})};
  const auto target = scaled({30.0f, 70.0f}), gender = torch::tensor({0L, 1L}), ethnicity = torch::tensor({3L, 0L});
  const auto l = TaskLosses(out, target, gender, ethnicity, AgeLoss::kYearsL1);
  EXPECT_NEAR(l[0].item<float>(), (5.0 + 10.0) / 2 / kAgeLossYears, 1e-5);
  // The classification terms do not depend on the age loss.
  const auto log_mse = TaskLosses(out, target, gender, ethnicity, AgeLoss::kLogMse);
  EXPECT_TRUE(torch::equal(l.slice(0, 1), log_mse.slice(0, 1)));
  // The old face's 10 years weigh twice the young one's 5 here; under log-MSE the young face's error weighs more
  // (log(30/25) > log(80/70)).
  auto age = out.age.clone().requires_grad_(true);
  TaskLosses({age, out.gender, out.ethnicity}, target, gender, ethnicity, AgeLoss::kYearsL1)[0].backward();
  const auto g = age.grad();
  // d/dp |e^(kAgeScale p) - a| = kAgeScale · e^(kAgeScale p) · sign, averaged over 2 and divided by kAgeLossYears.
  EXPECT_NEAR(g[0].item<float>(), -kAgeScale * 25.0 / 2 / kAgeLossYears, 1e-4);
  EXPECT_NEAR(g[1].item<float>(), kAgeScale * 80.0 / 2 / kAgeLossYears, 1e-4);
}

TEST(MultiTaskLoss, ComputesTaskLossesWithItsConfiguredAgeLoss) {
  TaskOutputs out{torch::tensor({0.5f, 0.7f}), torch::zeros({2, 2}), torch::zeros({2, 5})};
  const auto age = torch::tensor({0.4f, 0.9f}), gender = torch::tensor({0L, 1L}), ethnicity = torch::tensor({3L, 0L});
  for (auto age_loss : {AgeLoss::kLogMse, AgeLoss::kYearsL1}) {
    for (auto weighting : {LossWeighting::kUncertainty, LossWeighting::kEqual}) {
      LossConfig config;
      config.weighting = weighting;
      config.age_loss = age_loss;
      auto loss = MakeMultiTaskLoss(config);
      EXPECT_EQ(loss->age_loss(), age_loss);
      EXPECT_TRUE(torch::equal(loss->TaskLosses(out, age, gender, ethnicity),
                               TaskLosses(out, age, gender, ethnicity, age_loss)));
    }
  }
  EXPECT_EQ(MakeMultiTaskLoss({})->age_loss(), AgeLoss::kLogMse);  // the reference's, by default
}

TEST(TaskLosses, LabelSmoothingMixesTheTargetWithAUniformOne) {
  TaskOutputs out{torch::tensor({0.5f, 0.7f}), torch::tensor({{2.0f, 0.0f}, {0.0f, 1.0f}}),
                  torch::tensor({{1.0f, 0.0f, 0.0f, 0.0f, 0.0f}, {0.0f, 0.0f, 3.0f, 0.0f, 0.0f}})};
  const auto age = torch::tensor({0.4f, 0.9f}), gender = torch::tensor({0L, 1L}), ethnicity = torch::tensor({0L, 4L});
  const double eps = 0.2;
  // (1 - eps) · (-log p_target) + eps · mean over classes of (-log p_c), averaged over the batch.
  auto smoothed = [&](const torch::Tensor& logits, const torch::Tensor& target) {
    const auto log_p = torch::log_softmax(logits.to(torch::kDouble), 1);
    const auto nll = -log_p.gather(1, target.unsqueeze(1)).squeeze(1);
    return ((1 - eps) * nll - eps * log_p.mean(1)).mean().item<double>();
  };
  LossConfig config;
  config.label_smoothing = eps;
  auto loss = MakeMultiTaskLoss(config);
  EXPECT_DOUBLE_EQ(loss->label_smoothing(), eps);
  const auto l = loss->TaskLosses(out, age, gender, ethnicity);
  EXPECT_NEAR(l[1].item<float>(), smoothed(out.gender, gender), 1e-6);
  EXPECT_NEAR(l[2].item<float>(), smoothed(out.ethnicity, ethnicity), 1e-6);
  // The age term is untouched, and no smoothing is plain cross-entropy.
  const auto plain = TaskLosses(out, age, gender, ethnicity, AgeLoss::kLogMse);
  EXPECT_EQ(l[0].item<float>(), plain[0].item<float>());
  EXPECT_EQ(MakeMultiTaskLoss({})->label_smoothing(), 0.0);
}

TEST(AgeLoss, ParsesItsNames) {
  for (auto a : {AgeLoss::kLogMse, AgeLoss::kYearsL1}) EXPECT_EQ(ParseAgeLoss(AgeLossName(a)), a);
  EXPECT_THROW(ParseAgeLoss("l2-years"), std::invalid_argument);
}

}  // namespace
}  // namespace facet
