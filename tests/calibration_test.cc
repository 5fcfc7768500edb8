#include "core/infer/predictor.h"
#include "core/model/model_file.h"
#include "core/train/calibration.h"
#include "tests/test_util.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <limits>
#include <numeric>
#include <random>

namespace facet {
namespace {

// Labels drawn from softmax(z / T): logits z that are over-confident by a factor T.
torch::Tensor SampleLabels(const torch::Tensor& z, double temperature) {
  return torch::multinomial(torch::softmax(z / temperature, 1), 1).squeeze(1);
}

TEST(TemperatureTest, RecoversTheTemperatureTheLabelsWereDrawnWith) {
  torch::manual_seed(1);
  for (double t : {0.5, 2.5}) {
    const auto z = torch::randn({20000, 5}) * 3;
    const auto labels = SampleLabels(z, t);
    EXPECT_NEAR(FitTemperature(z, labels), t, 0.08 * t) << "drawn with T=" << t;
  }
}

TEST(TemperatureTest, LowersTheCalibrationError) {
  torch::manual_seed(2);
  const auto z = torch::randn({20000, 2}) * 4;
  const auto labels = SampleLabels(z, 3.0);
  const double t = FitTemperature(z, labels);
  const double before = ExpectedCalibrationError(torch::softmax(z, 1), labels);
  const double after = ExpectedCalibrationError(torch::softmax(z / t, 1), labels);
  EXPECT_GT(before, 0.1);  // confidences near 1 for labels that are often wrong
  EXPECT_LT(after, 0.02);
}

TEST(CalibrationErrorTest, IsTheGapBetweenConfidenceAndAccuracy) {
  // Four predictions at confidence 0.75, three of them right: calibrated.
  auto p = torch::tensor({0.75, 0.25}).repeat({4, 1});
  EXPECT_NEAR(ExpectedCalibrationError(p, torch::tensor({0, 0, 0, 1}, torch::kLong)), 0.0, 1e-12);
  // The same confidence, all wrong: the whole 0.75 is the gap.
  EXPECT_NEAR(ExpectedCalibrationError(p, torch::tensor({1, 1, 1, 1}, torch::kLong)), 0.75, 1e-12);
  // Two bins, weighted by their share: 0.95 all right (gap .05), 0.55 all wrong (gap .55).
  auto q = torch::tensor({{0.95, 0.05}, {0.55, 0.45}});
  EXPECT_NEAR(ExpectedCalibrationError(q, torch::tensor({0, 1}, torch::kLong)), (0.05 + 0.55) / 2, 1e-6);
}

TEST(ConformalTest, TakesTheCeilRankOfNPlusOne) {
  std::vector<double> scores(99);
  std::iota(scores.begin(), scores.end(), 1.0);  // 1..99, shuffled below
  std::shuffle(scores.begin(), scores.end(), std::mt19937(3));
  EXPECT_EQ(ConformalQuantile(scores, 0.9), 90.0);   // ceil(100 * 0.9) = 90th smallest
  EXPECT_EQ(ConformalQuantile(scores, 0.5), 50.0);
  EXPECT_TRUE(std::isinf(ConformalQuantile({1.0, 2.0, 3.0}, 0.9)));  // ceil(4 * 0.9) = 4 > n
  EXPECT_THROW(ConformalQuantile(scores, 1.0), std::invalid_argument);
}

TEST(ConformalTest, CoversFreshDataAtTheNominalRate) {
  std::mt19937 rng(5);
  std::exponential_distribution<double> score(1.0);
  int covered = 0, trials = 0;
  for (int round = 0; round < 200; ++round) {
    std::vector<double> calibration(200);
    for (auto& s : calibration) s = score(rng);
    const double q = ConformalQuantile(calibration, 0.9);
    for (int i = 0; i < 50; ++i, ++trials) covered += score(rng) <= q;
  }
  const double coverage = static_cast<double>(covered) / trials;
  EXPECT_GE(coverage, 0.885);  // the guarantee is >= 0.9 in expectation; 10000 draws give about +-0.006
  EXPECT_LE(coverage, 0.93);
}

// A model's outputs on a tiny validation set whose numbers are checked by hand.
LabelledOutputs HandMadeOutputs() {
  LabelledOutputs d;
  // True ages 5, 25, 27, 85; predicted 10, 25, 20, 85.
  auto target = [](std::vector<double> years) {
    std::vector<float> t;
    for (double y : years) t.push_back(static_cast<float>(AgeToTarget(y)));
    return torch::tensor(t);
  };
  d.age = target({5, 25, 27, 85});
  d.outputs.age = target({10, 25, 20, 85});
  d.gender = torch::tensor({0, 1, 1, 0}, torch::kLong);
  d.outputs.gender = torch::tensor({{2.f, 0.f}, {0.f, 2.f}, {2.f, 0.f}, {2.f, 0.f}});  // third one wrong
  d.ethnicity = torch::tensor({0, 1, 1, 2}, torch::kLong);
  d.outputs.ethnicity = torch::zeros({4, 5});
  d.outputs.ethnicity.index_put_({torch::arange(4), torch::tensor({0, 1, 2, 2}, torch::kLong)}, 3.0);  // third wrong
  return d;
}

TEST(GroupMetricsTest, SplitsByEthnicityGenderAndAgeDecade) {
  const auto m = ComputeMetrics(HandMadeOutputs(), *MakeMultiTaskLoss({}));
  EXPECT_NEAR(m.age_mae_years, (5 + 0 + 7 + 0) / 4.0, 1e-3);
  std::map<std::string, GroupMetrics> by;
  for (const auto& g : m.groups) by[g.dimension + ":" + g.group] = g;
  ASSERT_EQ(by.size(), 3u + 2u + 3u) << "empty groups are left out";
  EXPECT_EQ(by["ethnicity:black"].n, 2);
  EXPECT_NEAR(by["ethnicity:black"].age_mae_years, 3.5, 1e-3);
  EXPECT_NEAR(by["ethnicity:black"].ethnicity_accuracy, 0.5, 1e-12);
  EXPECT_NEAR(by["gender:female"].gender_accuracy, 0.5, 1e-12);
  EXPECT_NEAR(by["gender:male"].gender_accuracy, 1.0, 1e-12);
  EXPECT_EQ(by["age_decade:0-9"].n, 1);
  EXPECT_NEAR(by["age_decade:0-9"].age_mae_years, 5.0, 1e-3);
  EXPECT_EQ(by["age_decade:20-29"].n, 2);
  EXPECT_EQ(by["age_decade:80+"].n, 1);
  EXPECT_EQ(AgeDecade(9), "0-9");
  EXPECT_EQ(AgeDecade(10), "10-19");
  EXPECT_EQ(AgeDecade(116), "80+");
}

TEST(CalibrationTest, FitsAnIntervalFromLogAgeResiduals) {
  const auto report = FitCalibration(HandMadeOutputs(), 0.6);
  // Residuals |log(pred/true)|: log 2, 0, log(27/20), 0; rank ceil(5 * 0.6) = 3 -> log(27/20).
  EXPECT_TRUE(report.calibration.has_age_interval());
  EXPECT_NEAR(report.calibration.age_log_halfwidth, std::log(27.0 / 20.0), 1e-5);
  EXPECT_EQ(report.n, 4);
  // Too few images for a 90% interval: none is claimed.
  EXPECT_FALSE(FitCalibration(HandMadeOutputs(), 0.9).calibration.has_age_interval());
}

TEST(CalibrationTest, TravelsWithTheExportAndScalesServedProbabilities) {
  testing::TempDir dir;
  torch::manual_seed(6);
  MultiTaskNet model(ResNetOptions{Arch::kResNet18, 8});
  model->eval();
  const Calibration calibration{/*gender_temperature=*/2.0, /*ethnicity_temperature=*/0.5, /*age_coverage=*/0.9,
                                /*age_log_halfwidth=*/0.25};
  ExportModel(dir / "calibrated.pt", model, MakeMultiTaskLoss({})->LogVariances(), 32, calibration);
  ExportModel(dir / "plain.pt", model, MakeMultiTaskLoss({})->LogVariances(), 32);
  ExportedModelInfo info;
  LoadExportedModel(dir / "calibrated.pt", c10::kCPU, &info);
  EXPECT_EQ(info.calibration.gender_temperature, 2.0);
  EXPECT_EQ(info.calibration.ethnicity_temperature, 0.5);
  EXPECT_EQ(info.calibration.age_coverage, 0.9);
  EXPECT_EQ(info.calibration.age_log_halfwidth, 0.25);

  const auto input = torch::randn({3, 3, 32, 32});
  const auto calibrated = Predictor::FromExport(dir / "calibrated.pt", {"cpu"})->PredictTensor(input);
  const auto plain = Predictor::FromExport(dir / "plain.pt", {"cpu"})->PredictTensor(input);
  for (size_t i = 0; i < 3; ++i) {
    // softmax(log p / T) = softmax(logits / T): the calibrated answer follows from the plain one.
    const auto g = torch::softmax(torch::log(torch::tensor({plain[i].gender_probabilities[0],
                                                             plain[i].gender_probabilities[1]})) / 2.0, 0);
    EXPECT_NEAR(calibrated[i].gender_probabilities[1], g[1].item<float>(), 1e-5);
    std::vector<float> e(plain[i].ethnicity_probabilities.begin(), plain[i].ethnicity_probabilities.end());
    const auto et = torch::softmax(torch::log(torch::tensor(e)) / 0.5, 0);
    EXPECT_NEAR(calibrated[i].ethnicity_probabilities[2], et[2].item<float>(), 1e-5);
    EXPECT_NEAR(calibrated[i].age_years, plain[i].age_years, 1e-9);
    EXPECT_NEAR(calibrated[i].age_low_years, plain[i].age_years * std::exp(-0.25), 1e-9);
    EXPECT_NEAR(calibrated[i].age_high_years, plain[i].age_years * std::exp(0.25), 1e-9);
    EXPECT_EQ(calibrated[i].age_interval_coverage, 0.9);
    EXPECT_EQ(plain[i].age_interval_coverage, 0.0);
    EXPECT_EQ(plain[i].age_low_years, plain[i].age_years);
  }
}

TEST(CalibrationTest, InvalidMetadataIsRefused) {
  testing::TempDir dir;
  MultiTaskNet model(ResNetOptions{Arch::kResNet18, 8});
  ExportModel(dir / "bad.pt", model, MakeMultiTaskLoss({})->LogVariances(), 32, Calibration{-1.0, 1.0, 0.0, 0.0});
  EXPECT_THROW(
      {
        try {
          LoadExportedModel(dir / "bad.pt", c10::kCPU);
        } catch (const std::runtime_error& e) {
          EXPECT_NE(std::string(e.what()).find("calibration"), std::string::npos) << e.what();
          throw;
        }
      },
      std::runtime_error);
}

}  // namespace
}  // namespace facet
