#include "core/data/augment.h"

#include "core/data/image_io.h"
#include "core/image/resample.h"

#include <opencv2/imgproc.hpp>

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <vector>

namespace facet {
namespace {

using Matrix3 = cv::Matx33d;

double Uniform(std::mt19937_64& rng, double lo, double hi) {
  return std::uniform_real_distribution<double>(lo, hi)(rng);
}

bool Chance(std::mt19937_64& rng, double p) { return p > 0 && Uniform(rng, 0.0, 1.0) < p; }

// fastai symmetric_warp: the homography taking the jittered corners back to the square's corners.
Matrix3 SymmetricWarp(std::mt19937_64& rng, double magnitude) {
  double m[4];
  for (double& v : m) v = Uniform(rng, -magnitude, magnitude);
  const cv::Point2f target[4] = {{float(-1 - m[3]), float(-1 - m[1])}, {float(-1 - m[2]), float(1 + m[1])},
                                 {float(1 + m[3]), float(-1 - m[0])}, {float(1 + m[2]), float(1 + m[0])}};
  const cv::Point2f square[4] = {{-1, -1}, {-1, 1}, {1, -1}, {1, 1}};
  const cv::Mat h = cv::getPerspectiveTransform(target, square);
  return Matrix3(h.ptr<double>());
}

Matrix3 Rotation(std::mt19937_64& rng, double max_degrees) {
  const double a = Uniform(rng, -max_degrees, max_degrees) * M_PI / 180.0;
  return Matrix3(std::cos(a), -std::sin(a), 0, std::sin(a), std::cos(a), 0, 0, 0, 1);
}

// fastai rand_zoom: scale in [1, max], focal point anywhere that keeps the crop inside the image.
Matrix3 Zoom(std::mt19937_64& rng, double max_zoom) {
  const double scale = Uniform(rng, 1.0, max_zoom);
  const double s = 1 - 1 / scale;
  const double col = s * (2 * Uniform(rng, 0, 1) - 1), row = s * (2 * Uniform(rng, 0, 1) - 1);
  return Matrix3(1 / scale, 0, col, 0, 1 / scale, row, 0, 0, 1);
}

// torchvision's RandomErasing with value 0 (the mean colour once normalised): up to ten draws of an area and an
// aspect ratio, the first rectangle that fits is erased in all channels.
void EraseRandomRectangle(std::mt19937_64& rng, double max_area, int n, float* out_chw) {
  constexpr double kMaxAspect = 1 / 0.3;
  const size_t plane = static_cast<size_t>(n) * n;
  for (int attempt = 0; attempt < 10; ++attempt) {
    const double area = static_cast<double>(plane) * Uniform(rng, kMinEraseArea, max_area);
    const double aspect = std::exp(Uniform(rng, -std::log(kMaxAspect), std::log(kMaxAspect)));
    const int h = static_cast<int>(std::lround(std::sqrt(area * aspect)));
    const int w = static_cast<int>(std::lround(std::sqrt(area / aspect)));
    if (h < 1 || w < 1 || h >= n || w >= n) continue;
    const int top = std::uniform_int_distribution<int>(0, n - h)(rng);
    const int left = std::uniform_int_distribution<int>(0, n - w)(rng);
    for (int ch = 0; ch < 3; ++ch) {
      for (int r = top; r < top + h; ++r) std::fill_n(out_chw + ch * plane + static_cast<size_t>(r) * n + left, w, 0.f);
    }
    return;
  }
}

double Logit(double p) {
  p = std::clamp(p, 1e-7, 1 - 1e-7);
  return std::log(p / (1 - p));
}

}  // namespace

Augmenter::Augmenter(const AugmentOptions& options, int size) : options_(options), size_(size) {
  // Unchecked strengths would reach uniform_real_distribution with lo > hi, which is undefined behaviour.
  ValidateAugmentOptions(options_);
  if (size < 1) throw std::invalid_argument("augmenter size must be >= 1");
}

void Augmenter::Apply(const cv::Mat& bgr, bool augment, std::mt19937_64& rng, float* out_chw) const {
  if (bgr.empty() || bgr.type() != CV_8UC3) throw std::invalid_argument("Augmenter needs a non-empty 8-bit BGR image");
  augment = augment && options_.enabled;
  const int n = size_;
  const int h = bgr.rows, w = bgr.cols;

  if (!augment) {
    ResizeToNetworkInput(ViewOf(bgr), n, out_chw);  // the validation resize, as the predictor makes it
    return;
  }
  // Output pixel centres in [-1,1] (aligned corners), pushed through warp then affine, mapped to source pixels.
  // Drawn in the reference's order, so that one seed means the same transforms.
  bool warp = false, transform = false;
  Matrix3 homography = Matrix3::eye(), affine = Matrix3::eye();
  if (Chance(rng, options_.warp_probability)) warp = true, homography = SymmetricWarp(rng, options_.max_warp);
  if (Chance(rng, options_.rotate_probability)) transform = true, affine = affine * Rotation(rng, options_.max_rotate_degrees);
  if (Chance(rng, options_.zoom_probability)) transform = true, affine = affine * Zoom(rng, options_.max_zoom);
  const size_t plane = static_cast<size_t>(n) * n;
  std::vector<double> src_x(plane), src_y(plane);
  for (int r = 0; r < n; ++r) {
    for (int c = 0; c < n; ++c) {
      cv::Vec3d p(AlignedCornerCoordinate(c, n), AlignedCornerCoordinate(r, n), 1.0);
      if (warp) {
        p = homography * p;
        p = cv::Vec3d(p[0] / p[2], p[1] / p[2], 1.0);
      }
      if (transform) p = affine * p;
      src_x[static_cast<size_t>(r) * n + c] = PixelOfCoordinate(p[0], w);
      src_y[static_cast<size_t>(r) * n + c] = PixelOfCoordinate(p[1], h);
    }
  }
  std::vector<float> sampled(3 * plane);
  SampleBilinearRgb(ViewOf(bgr), src_x.data(), src_y.data(), plane, sampled.data());

  const double l = options_.max_lighting;
  const bool brightness = Chance(rng, options_.lighting_probability);
  const double brightness_shift = Logit(Uniform(rng, 0.5 - l / 2, 0.5 + l / 2));
  const bool contrast = Chance(rng, options_.lighting_probability);
  const double contrast_scale = std::exp(Uniform(rng, std::log(1 - l), -std::log(1 - l)));
  const bool flip = Chance(rng, options_.flip_probability);
  for (int ch = 0; ch < 3; ++ch) {
    for (int r = 0; r < n; ++r) {
      const float* in_row = sampled.data() + ch * plane + static_cast<size_t>(r) * n;
      float* out_row = out_chw + ch * plane + static_cast<size_t>(r) * n;
      for (int c = 0; c < n; ++c) {
        double v = in_row[flip ? n - 1 - c : c];
        if (brightness || contrast) {
          double x = Logit(v);
          if (brightness) x += brightness_shift;
          if (contrast) x *= contrast_scale;
          v = 1.0 / (1.0 + std::exp(-x));
        }
        out_row[c] = static_cast<float>(v);
      }
    }
  }
  NormalizeImageNet(out_chw, plane);
  // Drawn last, so that with erasing off every other transform draws what the reference draws for the same seed.
  if (Chance(rng, options_.erase_probability)) {
    EraseRandomRectangle(rng, options_.max_erase_area, n, out_chw);
  }
}

}  // namespace facet
