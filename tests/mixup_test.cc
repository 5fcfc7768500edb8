#include "core/train/mixup.h"

#include "core/labels.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <vector>

namespace facet {
namespace {

std::vector<double> Lambdas(double alpha, int draws) {
  torch::manual_seed(7);
  std::vector<double> lambdas;
  for (int i = 0; i < draws; ++i) lambdas.push_back(DrawMixup(4, alpha).lambda);
  return lambdas;
}

double ShareBelow(const std::vector<double>& values, double bound) {
  int n = 0;
  for (double v : values) n += v < bound;
  return static_cast<double>(n) / static_cast<double>(values.size());
}

TEST(Mixup, PartnersArePermutationsAndTheSeedDecidesTheDraw) {
  torch::manual_seed(3);
  const MixupDraw first = DrawMixup(16, 0.4);
  torch::manual_seed(3);
  const MixupDraw again = DrawMixup(16, 0.4);
  EXPECT_EQ(first.lambda, again.lambda);
  EXPECT_TRUE(torch::equal(first.partner, again.partner));
  EXPECT_TRUE(torch::equal(std::get<0>(first.partner.sort()), torch::arange(16, torch::kLong)))
      << "every image is some image's partner exactly once";
  EXPECT_GE(first.lambda, 0.0);
  EXPECT_LE(first.lambda, 1.0);
  EXPECT_THROW(DrawMixup(16, 0.0), std::invalid_argument);
}

// λ ~ Beta(α, α): uniform at α = 1 (a quarter of draws below 0.25), piled at 0 and 1 for small α.
TEST(Mixup, TheBlendFollowsABetaDistribution) {
  const auto uniform = Lambdas(1.0, 4000);
  EXPECT_NEAR(ShareBelow(uniform, 0.25), 0.25, 0.03);
  EXPECT_NEAR(ShareBelow(uniform, 0.5), 0.5, 0.03);
  const auto peaked = Lambdas(0.1, 4000);
  // Beta(0.1, 0.1) puts about 77% of its mass within 0.05 of either end.
  const double near_ends = ShareBelow(peaked, 0.05) + (1.0 - ShareBelow(peaked, 0.95));
  EXPECT_GT(near_ends, 0.7);
  EXPECT_NEAR(ShareBelow(peaked, 0.5), 0.5, 0.03) << "symmetric";
}

TEST(Mixup, ImagesAreBlendedWithTheirPartners) {
  const auto images = torch::rand({3, 3, 4, 4});
  MixupDraw draw;
  draw.lambda = 0.7;
  draw.partner = torch::tensor({2, 0, 1}, torch::kLong);
  const auto mixed = MixImages(images, draw);
  for (int i = 0; i < 3; ++i) {
    const auto expected = images[i] * 0.7 + images[draw.partner[i].item<int64_t>()] * 0.3;
    EXPECT_TRUE(torch::allclose(mixed[i], expected, 1e-6, 1e-6)) << i;
  }
  draw.lambda = 1.0;
  EXPECT_TRUE(torch::allclose(MixImages(images, draw), images));
}

torch::Tensor AgeTargets(std::vector<double> years) {
  std::vector<float> targets;
  for (double y : years) targets.push_back(static_cast<float>(AgeToTarget(y)));
  return torch::tensor(targets);
}

// Two faces blended 70/30, each with the other: the gender and ethnicity losses are lowest when the model answers
// 70/30, and the age loss (L1 in years) is 0.7|a - own age| + 0.3|a - partner's age|, lowest at the face's own age.
TEST(Mixup, TheMixedLossIsLowestWhenTheModelAnswersInProportion) {
  LossConfig config;
  config.age_loss = AgeLoss::kYearsL1;
  const auto loss = MakeMultiTaskLoss(config);
  MixupDraw draw;
  draw.lambda = 0.7;
  draw.partner = torch::tensor({1, 0}, torch::kLong);
  const auto age = AgeTargets({20, 60});
  const auto gender = torch::tensor({0, 1}, torch::kLong);
  const auto ethnicity = torch::tensor({2, 4}, torch::kLong);

  TaskOutputs outputs;
  outputs.gender = torch::zeros({2, 2}, torch::requires_grad());
  outputs.ethnicity = torch::zeros({2, 5}, torch::requires_grad());
  for (double answer : {20.0, 30.0, 45.0, 60.0}) {
    outputs.age = AgeTargets({answer, 80.0 - answer});  // both faces equally far from their own age
    const double expected = (0.7 * std::abs(answer - 20) + 0.3 * std::abs(answer - 60)) / kAgeLossYears;
    EXPECT_NEAR(MixedTaskLosses(*loss, outputs, age, gender, ethnicity, draw)[0].item<float>(), expected, 1e-4)
        << answer;
  }

  torch::optim::Adam optimizer({outputs.gender, outputs.ethnicity}, torch::optim::AdamOptions(0.02));
  for (int step = 0; step < 1500; ++step) {
    optimizer.zero_grad();
    MixedTaskLosses(*loss, outputs, age, gender, ethnicity, draw).sum().backward();
    optimizer.step();
  }
  const auto gender_p = torch::softmax(outputs.gender.detach(), 1);
  EXPECT_NEAR(gender_p[0][0].item<float>(), 0.7, 0.01);
  EXPECT_NEAR(gender_p[1][1].item<float>(), 0.7, 0.01);
  const auto ethnicity_p = torch::softmax(outputs.ethnicity.detach(), 1);
  EXPECT_NEAR(ethnicity_p[0][2].item<float>(), 0.7, 0.01);
  EXPECT_NEAR(ethnicity_p[0][4].item<float>(), 0.3, 0.01);
  EXPECT_NEAR(ethnicity_p[0][0].item<float>(), 0.0, 0.01);

  // With every face its own partner the blend is the plain loss.
  draw.partner = torch::tensor({0, 1}, torch::kLong);
  EXPECT_TRUE(torch::allclose(MixedTaskLosses(*loss, outputs, age, gender, ethnicity, draw),
                              loss->TaskLosses(outputs, age, gender, ethnicity)));
}

}  // namespace
}  // namespace facet
