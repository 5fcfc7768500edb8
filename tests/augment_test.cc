#include "core/data/augment.h"
#include "core/data/image_io.h"
#include "core/data/synthetic.h"
#include "core/image/resample.h"
#include "core/infer/preprocess.h"

#include <gtest/gtest.h>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#include <torch/torch.h>

#include <cmath>
#include <stdexcept>
#include <string>

namespace facet {
namespace {

cv::Mat TestImage(int size = 120) {
  std::mt19937_64 rng(5);
  return RenderSyntheticFace({40, 1, 2}, size, rng);
}

torch::Tensor AugmentOnce(const Augmenter& a, const cv::Mat& img, bool augment, uint64_t seed) {
  auto out = torch::empty({3, a.size(), a.size()});
  std::mt19937_64 rng(seed);
  a.Apply(img, augment, rng, out.data_ptr<float>());
  return out;
}

TEST(Augmenter, ValidationPathEqualsThePredictorsPreprocessing) {
  const cv::Mat img = TestImage();
  const Augmenter augmenter(AugmentOptions{}, 64);
  const auto loader_view = AugmentOnce(augmenter, img, /*augment=*/false, 0);
  const auto predictor_view = PreprocessImage(ViewOf(img), 64);
  EXPECT_LT((loader_view - predictor_view).abs().max().item<float>(), 1e-4);
}

TEST(Augmenter, OutputIsNormalisedWithinTheImageNetRange) {
  const Augmenter augmenter(AugmentOptions{}, 48);
  for (uint64_t seed = 0; seed < 20; ++seed) {
    const auto out = AugmentOnce(augmenter, TestImage(), true, seed);
    EXPECT_TRUE(torch::isfinite(out).all().item<bool>());
    for (int c = 0; c < 3; ++c) {
      EXPECT_GE(out[c].min().item<float>(), (0 - kImageNetMean[c]) / kImageNetStd[c] - 1e-4);
      EXPECT_LE(out[c].max().item<float>(), (1 - kImageNetMean[c]) / kImageNetStd[c] + 1e-4);
    }
  }
}

TEST(Augmenter, IsDeterministicUnderASeedAndVariesAcrossSeeds) {
  const Augmenter augmenter(AugmentOptions{}, 64);
  const cv::Mat img = TestImage();
  EXPECT_TRUE(torch::equal(AugmentOnce(augmenter, img, true, 11), AugmentOnce(augmenter, img, true, 11)));
  EXPECT_FALSE(torch::equal(AugmentOnce(augmenter, img, true, 11), AugmentOnce(augmenter, img, true, 12)));
}

TEST(Augmenter, FlipAloneMirrorsTheValidationImage) {
  AugmentOptions only_flip;
  only_flip.flip_probability = 1.0;
  only_flip.rotate_probability = only_flip.zoom_probability = only_flip.warp_probability = 0.0;
  only_flip.lighting_probability = 0.0;
  const cv::Mat img = TestImage();
  const auto plain = AugmentOnce(Augmenter(only_flip, 64), img, false, 0);
  const auto flipped = AugmentOnce(Augmenter(only_flip, 64), img, true, 0);
  EXPECT_LT((flipped - plain.flip({2})).abs().max().item<float>(), 1e-5);
}

// Erasing draws after every other transform, so the same seed gives the same image but for one rectangle of zeros
// (the mean colour once normalised) of 2% to max_erase_area of the image.
TEST(Augmenter, ErasingSetsOneRectangleToTheMeanAndLeavesTheOtherTransformsAsTheyWere) {
  using torch::indexing::Slice;
  AugmentOptions erase;
  erase.erase_probability = 1.0;
  erase.max_erase_area = 0.25;
  const int n = 64;
  const cv::Mat img = TestImage();
  for (uint64_t seed = 0; seed < 20; ++seed) {
    const auto without = AugmentOnce(Augmenter(AugmentOptions{}, n), img, true, seed);
    const auto with = AugmentOnce(Augmenter(erase, n), img, true, seed);
    const auto changed = (with != without).any(0);
    const auto rows = changed.any(1).nonzero(), cols = changed.any(0).nonzero();
    ASSERT_GT(rows.size(0), 0) << "seed " << seed << ": nothing erased";
    const int64_t top = rows.min().item<int64_t>(), bottom = rows.max().item<int64_t>() + 1;
    const int64_t left = cols.min().item<int64_t>(), right = cols.max().item<int64_t>() + 1;
    const auto box = with.index({Slice(), Slice(top, bottom), Slice(left, right)});
    EXPECT_TRUE((box == 0).all().item<bool>()) << "seed " << seed;
    auto restored = with.clone();
    restored.index_put_({Slice(), Slice(top, bottom), Slice(left, right)},
                        without.index({Slice(), Slice(top, bottom), Slice(left, right)}));
    EXPECT_TRUE(torch::equal(restored, without)) << "seed " << seed << ": changed outside the rectangle";
    const double share = static_cast<double>((bottom - top) * (right - left)) / (n * n);
    EXPECT_GE(share, 0.015) << "seed " << seed;  // 2% before rounding the sides to pixels
    EXPECT_LE(share, 0.28) << "seed " << seed;
  }
}

TEST(Augmenter, ErasingIsTrainingOnly) {
  AugmentOptions erase;
  erase.erase_probability = 1.0;
  const cv::Mat img = TestImage();
  EXPECT_TRUE(torch::equal(AugmentOnce(Augmenter(erase, 64), img, false, 3),
                           AugmentOnce(Augmenter(AugmentOptions{}, 64), img, false, 3)));
}

TEST(Augmenter, DisabledAugmentationIsTheValidationPath) {
  AugmentOptions off;
  off.enabled = false;
  const cv::Mat img = TestImage();
  EXPECT_TRUE(torch::equal(AugmentOnce(Augmenter(off, 64), img, true, 3), AugmentOnce(Augmenter(off, 64), img, false, 3)));
}

// Each strength whose draw would have an empty interval, and a probability outside [0, 1], is refused when the
// augmenter is built, naming the field; the defaults and the edges of each range are accepted.
TEST(Augmenter, RefusesOptionsItCannotDrawFrom) {
  const auto expect_refused = [](void (*set)(AugmentOptions&), const std::string& field) {
    AugmentOptions options;
    set(options);
    try {
      Augmenter(options, 32);
      ADD_FAILURE() << field << " was accepted";
    } catch (const std::invalid_argument& e) {
      EXPECT_EQ(std::string(e.what()).rfind("augment." + field + ":", 0), 0u) << e.what();
    }
  };
  expect_refused([](AugmentOptions& o) { o.max_zoom = 0.5; }, "max_zoom");
  expect_refused([](AugmentOptions& o) { o.max_erase_area = 0.01; }, "max_erase_area");
  expect_refused([](AugmentOptions& o) { o.flip_probability = 1.5; }, "flip_probability");
  expect_refused([](AugmentOptions& o) { o.max_warp = std::nan(""); }, "max_warp");
  expect_refused([](AugmentOptions& o) { o.max_rotate_degrees = -1; }, "max_rotate_degrees");

  EXPECT_NO_THROW(Augmenter(AugmentOptions{}, 32));
  AugmentOptions edges;
  edges.max_zoom = 1.0;
  edges.max_erase_area = kMinEraseArea;
  edges.erase_probability = 1.0;
  const Augmenter augmenter(edges, 32);
  EXPECT_TRUE(torch::isfinite(AugmentOnce(augmenter, TestImage(), true, 3)).all().item<bool>());
}

TEST(Augmenter, RejectsNonBgrInput) {
  const Augmenter augmenter(AugmentOptions{}, 32);
  std::mt19937_64 rng(0);
  float out[3 * 32 * 32];
  EXPECT_THROW(augmenter.Apply(cv::Mat(), false, rng, out), std::invalid_argument);
  EXPECT_THROW(augmenter.Apply(cv::Mat(10, 10, CV_8UC1), false, rng, out), std::invalid_argument);
}

TEST(DecodeImage, ReportsCorruptAndEmptyData) {
  EXPECT_THROW(DecodeImage(""), ImageDecodeError);
  EXPECT_THROW(DecodeImage("definitely not a jpeg"), ImageDecodeError);
  std::vector<uchar> jpeg;
  cv::imencode(".jpg", TestImage(), jpeg);
  const std::string truncated(reinterpret_cast<const char*>(jpeg.data()), 40);
  EXPECT_THROW(DecodeImage(truncated), ImageDecodeError);
  const cv::Mat decoded = DecodeImage(std::string(jpeg.begin(), jpeg.end()));
  EXPECT_EQ(decoded.size(), cv::Size(120, 120));
}

std::string Encode(const cv::Mat& image, const std::string& ext) {
  std::vector<uchar> bytes;
  cv::imencode(ext, image, bytes);
  return std::string(bytes.begin(), bytes.end());
}

TEST(PeekImageSize, ReadsJpegPngAndBmpHeaders) {
  const cv::Mat image = TestImage(120)(cv::Rect(0, 0, 120, 77)).clone();
  for (const char* ext : {".jpg", ".png", ".bmp"}) {
    const auto size = PeekImageSize(Encode(image, ext));
    ASSERT_TRUE(size.has_value()) << ext;
    EXPECT_EQ(*size, cv::Size(120, 77)) << ext;
  }
  EXPECT_FALSE(PeekImageSize("GIF89a........").has_value());
  EXPECT_FALSE(PeekImageSize(Encode(image, ".jpg").substr(0, 30)).has_value());
}

TEST(DecodeImage, RefusesADecompressionBombFromItsHeader) {
  std::string png = Encode(TestImage(64), ".png");
  // Patch IHDR to claim 100000 x 100000 pixels: a decoder would try to allocate 30 GB.
  for (int offset : {16, 20}) {
    png[offset] = 0, png[offset + 1] = 0x01, png[offset + 2] = static_cast<char>(0x86), png[offset + 3] = static_cast<char>(0xA0);
  }
  try {
    DecodeImage(png, 40'000'000);
    FAIL() << "a bomb was decoded";
  } catch (const ImageDecodeError& e) {
    EXPECT_NE(std::string(e.what()).find("100000x100000"), std::string::npos) << e.what();
  }
  EXPECT_THROW(DecodeImage(Encode(TestImage(64), ".tiff"), 40'000'000), ImageDecodeError);  // not JPEG/PNG/BMP
  EXPECT_EQ(DecodeImage(Encode(TestImage(64), ".jpg"), 40'000'000).size(), cv::Size(64, 64));
  EXPECT_THROW(DecodeImage(Encode(TestImage(64), ".jpg"), 1000), ImageDecodeError);  // 4096 pixels > 1000
}

// The one validation resize is the reference's: LibTorch's bilinear interpolation with aligned corners, then the
// ImageNet normalisation (computed here the reference's way, independently of core/image).
TEST(ResizeToNetworkInput, EqualsLibTorchsAlignedCornersBilinear) {
  for (const auto& [source, size] : {std::pair{120, 64}, std::pair{50, 96}, std::pair{64, 64}}) {
    const cv::Mat bgr = TestImage(source);
    auto rgb = torch::from_blob(bgr.data, {bgr.rows, bgr.cols, 3}, torch::kUInt8)
                   .index({torch::indexing::Slice(), torch::indexing::Slice(), torch::tensor({2, 1, 0})})
                   .permute({2, 0, 1}).to(torch::kFloat).div(255.0).unsqueeze(0);
    namespace F = torch::nn::functional;
    const auto resized = F::interpolate(rgb, F::InterpolateFuncOptions()
                                                 .size(std::vector<int64_t>{size, size})
                                                 .mode(torch::kBilinear)
                                                 .align_corners(true)).squeeze(0);
    const auto mean = torch::tensor({kImageNetMean[0], kImageNetMean[1], kImageNetMean[2]}).view({3, 1, 1});
    const auto std = torch::tensor({kImageNetStd[0], kImageNetStd[1], kImageNetStd[2]}).view({3, 1, 1});
    const auto expected = (resized - mean) / std;
    auto actual = torch::empty({3, size, size});
    ResizeToNetworkInput(ViewOf(bgr), size, actual.data_ptr<float>());
    EXPECT_LT((actual - expected).abs().max().item<float>(), 2e-5) << source << " -> " << size;
  }
  std::vector<float> out(3 * 8 * 8);
  EXPECT_THROW(ResizeToNetworkInput(ImageView{}, 8, out.data()), std::invalid_argument);
  const cv::Mat img = TestImage(16);
  EXPECT_THROW(ResizeToNetworkInput(ViewOf(img), 0, out.data()), std::invalid_argument);
}

TEST(PreprocessImage, HandlesGrayAndBgraAndStrides) {
  const cv::Mat bgr = TestImage(80);
  cv::Mat gray, bgra;
  cv::cvtColor(bgr, gray, cv::COLOR_BGR2GRAY);
  cv::cvtColor(bgr, bgra, cv::COLOR_BGR2BGRA);
  const auto from_gray = PreprocessImage(ViewOf(gray), 32);
  EXPECT_EQ(from_gray.sizes(), (std::vector<int64_t>{3, 32, 32}));
  // The three channels of a gray image differ only by normalisation.
  EXPECT_LT(((from_gray[0] * kImageNetStd[0] + kImageNetMean[0]) - (from_gray[2] * kImageNetStd[2] + kImageNetMean[2]))
                .abs().max().item<float>(), 1e-5);
  EXPECT_TRUE(torch::allclose(PreprocessImage(ViewOf(bgra), 32), PreprocessImage(ViewOf(bgr), 32)));
  const cv::Mat roi = bgr(cv::Rect(10, 10, 50, 40));  // a non-contiguous view
  EXPECT_TRUE(torch::allclose(PreprocessImage(ViewOf(roi), 32), PreprocessImage(ViewOf(roi.clone()), 32)));
  EXPECT_THROW(PreprocessImage(ImageView{}, 32), std::invalid_argument);
}

}  // namespace
}  // namespace facet
