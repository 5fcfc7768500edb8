// fastai-style augmentation and the validation resize, in one resampling pass from the source image.
#pragma once

#include "core/data/augment_options.h"

#include <opencv2/core/mat.hpp>

#include <random>

namespace facet {

// Turns an 8-bit BGR image of any size into the network input: (3,size,size) floats, RGB, ImageNet-normalised,
// written to `out_chw`. Like the reference (and fastai's lazy flow field), warp, rotation and zoom compose into one
// sampling grid in normalised coordinates with aligned corners, sampled bilinearly with reflection at the border;
// then lighting in logit space, a horizontal flip and (when asked) random erasing. Sampling is exact bilinear (not
// cv::remap's 1/32-pixel grid: SampleBilinearRgb). With augment=false it is the validation resize itself
// (ResizeToNetworkInput), which the predictor serves with. Thread-safe: Apply is const and draws from the caller's rng.
class Augmenter {
 public:
  Augmenter(const AugmentOptions& options, int size);
  void Apply(const cv::Mat& bgr, bool augment, std::mt19937_64& rng, float* out_chw) const;
  int size() const { return size_; }

 private:
  AugmentOptions options_;
  int size_;
};

}  // namespace facet
