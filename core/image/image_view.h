// The image primitives that data (training) and infer (serving) share, so that both turn a face into the same
// network input. Plain C++: no LibTorch, no OpenCV.
#pragma once

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

// The ImageNet statistics every input is normalised with (torchvision's pretrained encoders expect them), RGB.
inline constexpr float kImageNetMean[3] = {0.485f, 0.456f, 0.406f};
inline constexpr float kImageNetStd[3] = {0.229f, 0.224f, 0.225f};

}  // namespace facet
