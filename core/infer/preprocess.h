// Turning 8-bit images into the network's input, exactly as validation does. LibTorch only (no OpenCV).
#pragma once

#include <ATen/core/Tensor.h>

#include <cstddef>
#include <cstdint>

namespace facet {

// A borrowed 8-bit image, rows top to bottom, channels interleaved: 1 (gray), 3 (BGR) or 4 (BGRA, alpha ignored).
struct ImageView {
  const uint8_t* data = nullptr;
  int height = 0;
  int width = 0;
  int channels = 3;
  size_t row_stride = 0;  // bytes between rows; 0 means width * channels
};

inline constexpr float kImageNetMean[3] = {0.485f, 0.456f, 0.406f};  // RGB
inline constexpr float kImageNetStd[3] = {0.229f, 0.224f, 0.225f};

// (3,size,size) float: RGB, [0,1], bilinear resize with aligned corners (fastai's grid_sample, the reference's
// convention), ImageNet-normalised. Throws std::invalid_argument on an empty image or bad channel count.
at::Tensor PreprocessImage(const ImageView& image, int size);

}  // namespace facet
