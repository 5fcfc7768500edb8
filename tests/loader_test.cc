#include "core/data/loader.h"
#include "core/data/synthetic.h"
#include "core/train/run_data.h"
#include "tests/test_util.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <fstream>

namespace facet {
namespace {

class LoaderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    WriteSyntheticDataset(dir_.path(), {/*count=*/50, /*image_size=*/48});
    samples_ = ScanUtkFaceFolder(dir_.path()).samples;
  }
  std::vector<Batch> Epoch(UtkFaceLoader& loader, uint64_t seed) {
    std::vector<Batch> out;
    loader.StartEpoch(seed);
    while (auto b = loader.Next()) out.push_back(*b);
    return out;
  }
  LoaderOptions Options(int workers) {
    LoaderOptions o;
    o.image_size = 32;
    o.batch_size = 8;
    o.shuffle = true;
    o.augment = true;
    o.drop_last = true;
    o.workers = workers;
    return o;
  }
  testing::TempDir dir_;
  std::vector<Sample> samples_;
};

TEST_F(LoaderTest, BatchesHaveTheRightShapesTypesAndLabels) {
  UtkFaceLoader loader(samples_, Options(2));
  EXPECT_EQ(loader.batches_per_epoch(), 6);  // 50 / 8, last partial batch dropped
  const auto batches = Epoch(loader, 1);
  ASSERT_EQ(batches.size(), 6u);
  for (const auto& b : batches) {
    EXPECT_EQ(b.images.sizes(), (std::vector<int64_t>{8, 3, 32, 32}));
    EXPECT_EQ(b.images.scalar_type(), torch::kFloat);
    EXPECT_EQ(b.gender.scalar_type(), torch::kLong);
    EXPECT_TRUE(((b.gender >= 0) & (b.gender < 2)).all().item<bool>());
    EXPECT_TRUE(((b.ethnicity >= 0) & (b.ethnicity < 5)).all().item<bool>());
    EXPECT_TRUE(((b.age >= 0) & (b.age <= 1.01)).all().item<bool>());
  }
}

TEST_F(LoaderTest, OutputDependsOnTheSeedNotOnTheNumberOfWorkers) {
  UtkFaceLoader inline_loader(samples_, Options(0)), threaded(samples_, Options(3));
  const auto a = Epoch(inline_loader, 42), b = Epoch(threaded, 42), c = Epoch(threaded, 43);
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_TRUE(torch::equal(a[i].images, b[i].images)) << "batch " << i;
    EXPECT_TRUE(torch::equal(a[i].age, b[i].age)) << "batch " << i;
  }
  EXPECT_FALSE(torch::equal(a[0].images, c[0].images));
}

TEST_F(LoaderTest, ValidationKeepsTheLastPartialBatchAndVisitsEverySampleOnce) {
  LoaderOptions o = Options(2);
  o.shuffle = o.augment = o.drop_last = false;
  UtkFaceLoader loader(samples_, o);
  const auto batches = Epoch(loader, 0);
  ASSERT_EQ(batches.size(), 7u);
  EXPECT_EQ(batches.back().size(), 2);
  int64_t total = 0;
  for (const auto& b : batches) total += b.size();
  EXPECT_EQ(total, 50);
}

TEST_F(LoaderTest, AnEpochCanBeAbandonedAndRestarted) {
  UtkFaceLoader loader(samples_, Options(2));
  loader.StartEpoch(5);
  ASSERT_TRUE(loader.Next().has_value());  // stop early, as a cancelled or stopped run does
  const auto full = Epoch(loader, 5);
  UtkFaceLoader fresh(samples_, Options(2));
  const auto expected = Epoch(fresh, 5);
  ASSERT_EQ(full.size(), expected.size());
  for (size_t i = 0; i < full.size(); ++i) EXPECT_TRUE(torch::equal(full[i].images, expected[i].images));
}

TEST_F(LoaderTest, UndecodableImagesAreSkippedAndCounted) {
  const std::string corrupt = dir_ / "33_0_1_20260101999999999.jpg.chip.jpg";
  std::ofstream(corrupt) << "this is not a jpeg";
  samples_.push_back({corrupt, {33, 0, 1}});
  LoaderOptions o = Options(2);
  o.shuffle = o.augment = o.drop_last = false;
  o.batch_size = 51;
  UtkFaceLoader loader(samples_, o);
  const auto batches = Epoch(loader, 0);
  ASSERT_EQ(batches.size(), 1u);
  EXPECT_EQ(batches[0].size(), 50);
  EXPECT_EQ(loader.undecodable_images(), 1);
}

// Share of white faces (ethnicity 0) over `epochs` epochs of a loader whose samples are 80% white.
double WhiteShare(const std::vector<Sample>& samples, LoaderOptions options, int epochs, uint64_t first_seed) {
  UtkFaceLoader loader(samples, options);
  int64_t white = 0, total = 0;
  for (int e = 0; e < epochs; ++e) {
    loader.StartEpoch(first_seed + e);
    while (auto b = loader.Next()) {
      white += (b->ethnicity == 0).sum().item<int64_t>();
      total += b->size();
    }
  }
  return static_cast<double>(white) / static_cast<double>(total);
}

TEST_F(LoaderTest, EthnicityBalanceDrawsRareEthnicitiesAsOftenAsCommonOnes) {
  std::vector<Sample> skewed = samples_;  // 40 white faces, then 2 or 3 of each other ethnicity
  for (size_t i = 0; i < skewed.size(); ++i) skewed[i].labels.ethnicity = i < 40 ? 0 : 1 + static_cast<int>(i % 4);
  LoaderOptions o = Options(2);
  o.augment = false;
  EXPECT_NEAR(WhiteShare(skewed, o, 10, 1), 0.8, 0.03);  // a shuffle: nearly every face, once
  o.ethnicity_balance = 1.0;
  // One ethnicity in five: 0.2 expected; over 480 draws its standard deviation is 0.018.
  EXPECT_NEAR(WhiteShare(skewed, o, 10, 1), 0.2, 0.07);
  o.ethnicity_balance = 0.5;
  // Faces weigh count^-0.5: white's 40 together sqrt(40), the others' 3, 3, 2, 2 together 2 sqrt(3) + 2 sqrt(2):
  // white gets half the draws.
  EXPECT_NEAR(WhiteShare(skewed, o, 10, 1), 0.5, 0.08);

  // The draw is the epoch seed's, whatever the number of workers.
  o.ethnicity_balance = 1.0;
  o.augment = true;
  LoaderOptions inline_options = o;
  inline_options.workers = 0;
  UtkFaceLoader threaded(skewed, o), inline_loader(skewed, inline_options);
  const auto a = Epoch(threaded, 9), b = Epoch(inline_loader, 9);
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_TRUE(torch::equal(a[i].images, b[i].images)) << "batch " << i;
    EXPECT_TRUE(torch::equal(a[i].ethnicity, b[i].ethnicity)) << "batch " << i;
  }
  o.ethnicity_balance = 1.5;
  EXPECT_THROW(UtkFaceLoader(skewed, o), std::invalid_argument);
}

TEST_F(LoaderTest, OpenTrainingDataBalancesTrainingOnly) {
  TrainingConfig config;
  config.data.data_dir = dir_.path();
  config.batch_size = 8;
  config.image_size = 32;
  config.device = "cpu";
  const TrainingData plain = OpenTrainingData(config);
  config.data.ethnicity_balance = 1.0;
  const TrainingData balanced = OpenTrainingData(config);
  // Validation is the same faces in the same order, balanced or not; training draws differently.
  const auto plain_validation = Epoch(*plain.validation, 3), balanced_validation = Epoch(*balanced.validation, 3);
  ASSERT_EQ(plain_validation.size(), balanced_validation.size());
  for (size_t i = 0; i < plain_validation.size(); ++i) {
    EXPECT_TRUE(torch::equal(plain_validation[i].images, balanced_validation[i].images)) << "batch " << i;
  }
  const auto plain_train = Epoch(*plain.train, 3), balanced_train = Epoch(*balanced.train, 3);
  ASSERT_EQ(plain_train.size(), balanced_train.size());
  bool any_differs = false;
  for (size_t i = 0; i < plain_train.size(); ++i) {
    any_differs |= !torch::equal(plain_train[i].age, balanced_train[i].age);
  }
  EXPECT_TRUE(any_differs);
}

TEST_F(LoaderTest, OpenTrainingDataSplitsAndRejectsEmptyFolders) {
  TrainingConfig config;
  config.data.data_dir = dir_.path();
  config.data.val_fraction = 0.2;
  config.batch_size = 8;
  config.image_size = 32;
  config.device = "cpu";
  const TrainingData data = OpenTrainingData(config);
  EXPECT_EQ(data.train->num_samples(), 40);
  EXPECT_EQ(data.validation->num_samples(), 10);

  testing::TempDir empty;
  std::ofstream(empty / "README.md") << "no images here";
  config.data.data_dir = empty.path();
  try {
    OpenTrainingData(config);
    FAIL() << "expected an error";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("no usable"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace facet
