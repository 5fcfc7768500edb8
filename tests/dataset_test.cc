#include "core/data/image_io.h"
#include "core/data/synthetic.h"
#include "core/data/utkface_dataset.h"
#include "tests/test_util.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <opencv2/core.hpp>
#include <fstream>
#include <set>

namespace facet {
namespace {

using testing::TempDir;

class DatasetTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_EQ(WriteSyntheticDataset(dir_.path(), {/*count=*/40, /*image_size=*/32}), 40); }
  TempDir dir_;
};

TEST_F(DatasetTest, ScanCountsAndSkipsBadNames) {
  std::ofstream(dir_ / "README.md") << "not an image";
  std::ofstream(dir_ / "39_1_20170116174525125.jpg.chip.jpg") << "x";  // malformed name (missing race)
  std::ofstream(dir_ / "30_1_9_20170116174525125.jpg.chip.jpg") << "x";  // race out of range
  const ScanResult scan = ScanUtkFaceFolder(dir_.path());
  EXPECT_EQ(scan.samples.size(), 40u);
  EXPECT_EQ(scan.report.usable, 40);
  EXPECT_EQ(scan.report.malformed, 1);
  EXPECT_EQ(scan.report.out_of_range, 1);
  EXPECT_EQ(scan.report.skipped_examples.size(), 2u);
  EXPECT_NE(scan.report.Summary().find("1 malformed"), std::string::npos) << scan.report.Summary();
  EXPECT_TRUE(std::is_sorted(scan.samples.begin(), scan.samples.end(),
                             [](const Sample& a, const Sample& b) { return a.path < b.path; }));
}

TEST_F(DatasetTest, ScanOfMissingFolderIsAClearError) {
  try {
    ScanUtkFaceFolder(dir_ / "nope");
    FAIL() << "expected an error";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("nope"), std::string::npos) << e.what();
  }
}

TEST_F(DatasetTest, SplitIsDeterministicDisjointAndComplete) {
  const auto samples = ScanUtkFaceFolder(dir_.path()).samples;
  const auto [train, val] = SplitTrainValidation(samples, 0.25, 7);
  EXPECT_EQ(val.size(), 10u);
  EXPECT_EQ(train.size(), 30u);
  std::set<std::string> seen;
  for (const auto& s : train) seen.insert(s.path);
  for (const auto& s : val) EXPECT_TRUE(seen.insert(s.path).second) << "in both: " << s.path;
  EXPECT_EQ(seen.size(), samples.size());

  const auto again = SplitTrainValidation(samples, 0.25, 7);
  ASSERT_EQ(again.second.size(), val.size());
  for (size_t i = 0; i < val.size(); ++i) EXPECT_EQ(again.second[i].path, val[i].path);
  const auto other = SplitTrainValidation(samples, 0.25, 8);
  bool differs = false;
  for (size_t i = 0; i < val.size(); ++i) differs = differs || other.second[i].path != val[i].path;
  EXPECT_TRUE(differs) << "another seed should choose another validation set";
}

TEST_F(DatasetTest, SubsampleIsSeededAndKeepsOrder) {
  const auto samples = ScanUtkFaceFolder(dir_.path()).samples;
  const auto subset = Subsample(samples, 12, 3);
  ASSERT_EQ(subset.size(), 12u);
  EXPECT_TRUE(std::is_sorted(subset.begin(), subset.end(),
                             [](const Sample& a, const Sample& b) { return a.path < b.path; }));
  const auto again = Subsample(samples, 12, 3);
  for (size_t i = 0; i < subset.size(); ++i) EXPECT_EQ(subset[i].path, again[i].path);
  EXPECT_EQ(Subsample(samples, 0, 3).size(), samples.size());
}

TEST_F(DatasetTest, SyntheticImagesCarryTheirLabels) {
  // The same labels render alike and different ethnicities differ in skin tone: a model has something to learn.
  std::mt19937_64 rng(1);
  auto mean_face = [&](int ethnicity) {
    cv::Scalar sum;
    for (int i = 0; i < 8; ++i) sum += cv::mean(RenderSyntheticFace({30, 0, ethnicity}, 64, rng)(cv::Rect(24, 28, 16, 16)));
    return sum / 8;
  };
  const cv::Scalar white = mean_face(0), black = mean_face(1);
  EXPECT_GT(white[2] - black[2], 80.0) << "red channel of the face centre should separate skin tones";
}

TEST(RealUtkFaceSample, EveryImageLoadsAndParses) {
  const auto dir = testing::SharedDataDir("utkface-sample");
  if (!dir) GTEST_SKIP() << "../shared/data/utkface-sample is absent: real-image test skipped";
  const ScanResult scan = ScanUtkFaceFolder(*dir);
  EXPECT_EQ(scan.report.malformed, 0);
  EXPECT_EQ(scan.report.out_of_range, 0);
  EXPECT_EQ(scan.samples.size(), 1500u);
  for (const auto& sample : scan.samples) {
    const cv::Mat image = ReadImageFile(sample.path);
    EXPECT_EQ(image.type(), CV_8UC3) << sample.path;
    EXPECT_EQ(image.rows, 200) << sample.path;
    EXPECT_EQ(image.cols, 200) << sample.path;
  }
}

}  // namespace
}  // namespace facet
