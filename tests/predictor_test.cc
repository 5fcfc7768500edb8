#include "core/data/image_io.h"
#include "core/data/synthetic.h"
#include "core/infer/predictor.h"
#include "core/loss/multitask_loss.h"
#include "tests/test_util.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <opencv2/core.hpp>
#include <thread>

namespace facet {
namespace {

class PredictorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    torch::manual_seed(4);
    model_ = MultiTaskNet(ResNetOptions{Arch::kResNet18, 8});
    model_->eval();
    // Non-trivial BatchNorm statistics, so that a predictor that forgot eval() would disagree.
    torch::NoGradGuard no_grad;
    for (auto& b : model_->named_buffers()) {
      if (b.key().find("running_var") != std::string::npos) b.value().uniform_(0.5, 2.0);
    }
    ExportModel(dir_ / "model.pt", model_, MakeMultiTaskLoss({})->LogVariances(), 40);
    std::mt19937_64 rng(9);
    for (int i = 0; i < 5; ++i) images_.push_back(RenderSyntheticFace({20 + 10 * i, i % 2, i}, 70 + 10 * i, rng));
  }
  std::vector<ImageView> Views() const {
    std::vector<ImageView> views;
    for (const auto& m : images_) views.push_back(ViewOf(m));
    return views;
  }
  testing::TempDir dir_;
  MultiTaskNet model_{nullptr};
  std::vector<cv::Mat> images_;
};

TEST_F(PredictorTest, MatchesTheModelOnPreprocessedImages) {
  auto predictor = Predictor::FromExport(dir_ / "model.pt", PredictorOptions{"cpu"});
  EXPECT_EQ(predictor->image_size(), 40);
  EXPECT_EQ(predictor->device(), "cpu");
  const auto predictions = predictor->Predict(Views());
  ASSERT_EQ(predictions.size(), 5u);
  std::vector<torch::Tensor> inputs;
  for (const auto& m : images_) inputs.push_back(PreprocessImage(ViewOf(m), 40));
  torch::NoGradGuard no_grad;
  const auto out = model_->forward(torch::stack(inputs));
  const auto gender = torch::softmax(out.gender, 1), ethnicity = torch::softmax(out.ethnicity, 1);
  for (int i = 0; i < 5; ++i) {
    const auto& p = predictions[i];
    EXPECT_NEAR(p.age_years, std::exp(out.age[i].item<double>() * 4.75), 1e-3);
    EXPECT_NEAR(p.gender_probabilities[1], gender[i][1].item<float>(), 1e-5);
    EXPECT_NEAR(p.ethnicity_probabilities[3], ethnicity[i][3].item<float>(), 1e-5);
    EXPECT_EQ(p.ethnicity, ethnicity[i].argmax().item<int64_t>());
    float total = 0;
    for (float q : p.ethnicity_probabilities) total += q;
    EXPECT_NEAR(total, 1.0f, 1e-5);
  }
}

TEST_F(PredictorTest, SplittingIntoSmallBatchesGivesTheSameAnswers) {
  auto whole = Predictor::FromExport(dir_ / "model.pt", PredictorOptions{"cpu", 64});
  auto split = Predictor::FromExport(dir_ / "model.pt", PredictorOptions{"cpu", 2});
  const auto a = whole->Predict(Views()), b = split->Predict(Views());
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_NEAR(a[i].age_years, b[i].age_years, 1e-3);
    EXPECT_NEAR(a[i].gender_probabilities[0], b[i].gender_probabilities[0], 1e-5);
  }
}

TEST_F(PredictorTest, FlipAveragingAveragesWithTheMirroredImage) {
  PredictorOptions options{"cpu"};
  options.flip_average = true;
  auto tta = Predictor::FromExport(dir_ / "model.pt", options);
  auto plain = Predictor::FromExport(dir_ / "model.pt", PredictorOptions{"cpu"});
  cv::Mat mirrored;
  cv::flip(images_[0], mirrored, 1);
  const auto a = plain->Predict({ViewOf(images_[0])})[0], b = plain->Predict({ViewOf(mirrored)})[0];
  const auto t = tta->Predict({ViewOf(images_[0])})[0];
  EXPECT_NEAR(t.gender_probabilities[0], (a.gender_probabilities[0] + b.gender_probabilities[0]) / 2, 1e-5);
}

TEST_F(PredictorTest, IsSafeToCallFromSeveralThreads) {
  auto predictor = Predictor::FromExport(dir_ / "model.pt", PredictorOptions{"cpu"});
  const auto expected = predictor->Predict(Views());
  std::vector<std::thread> threads;
  std::atomic<int> mismatches{0};
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int k = 0; k < 5; ++k) {
        const auto got = predictor->Predict(Views());
        for (size_t i = 0; i < got.size(); ++i) {
          if (std::abs(got[i].age_years - expected[i].age_years) > 1e-3) ++mismatches;
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(mismatches.load(), 0);
}

TEST_F(PredictorTest, BadInputsAreClearErrors) {
  EXPECT_THROW(Predictor::FromExport(dir_ / "missing.pt", PredictorOptions{"cpu"}), std::runtime_error);
  EXPECT_THROW(Predictor::FromExport(dir_ / "model.pt", PredictorOptions{"tpu"}), std::invalid_argument);
  auto predictor = Predictor::FromExport(dir_ / "model.pt", PredictorOptions{"cpu"});
  EXPECT_TRUE(predictor->Predict({}).empty());
  EXPECT_THROW(predictor->Predict({ImageView{}}), std::invalid_argument);
  EXPECT_THROW(predictor->PredictTensor(torch::zeros({2, 1, 40, 40})), std::invalid_argument);
}

}  // namespace
}  // namespace facet
