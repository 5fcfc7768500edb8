// Bilinear resampling into the network's input layout: the one validation resize, and the sampler that the
// training augmenter draws its warped grids with. Plain C++: pure functions, thread-safe.
#pragma once

#include "core/image/image_view.h"

#include <cstddef>

namespace facet {

// Samples `image` bilinearly at `count` source positions (x[i], y[i]), in pixels (0 is the first pixel's centre),
// with double-precision weights: exactly LibTorch's interpolate(align_corners=True) up to float rounding (cv::remap
// would quantise positions to 1/32 pixel). Positions outside the image fold back as OpenCV's BORDER_REFLECT_101
// does. Writes RGB in [0, 1] as three planes: channel c of sample i goes to out_rgb[c * count + i]. Throws
// std::invalid_argument on an empty image or a channel count other than 1, 3 or 4.
void SampleBilinearRgb(const ImageView& image, const double* x, const double* y, size_t count, float* out_rgb);

// Where output pixel (row, col) of a size x size grid with aligned corners falls, in normalised coordinates:
// -1 is the first pixel's centre, 1 the last's (fastai's and the reference's convention).
inline double AlignedCornerCoordinate(int index, int size) {
  return size == 1 ? 0.0 : -1.0 + 2.0 * index / (size - 1);
}
// A normalised coordinate in [-1, 1] as a source pixel position along an axis of `pixels` pixels.
inline double PixelOfCoordinate(double coordinate, int pixels) { return (coordinate + 1) * 0.5 * (pixels - 1); }

// In place, on three planes (RGB) of `plane` values in [0, 1]: (v - mean) / std per channel.
void NormalizeImageNet(float* rgb_planes, size_t plane);

// The validation resize: the image as (3, size, size) floats, RGB, bilinear with aligned corners, ImageNet-
// normalised, written to out_chw. Training's validation batches and the predictor both come from it.
// Throws std::invalid_argument as SampleBilinearRgb does, and on size < 1.
void ResizeToNetworkInput(const ImageView& image, int size, float* out_chw);

}  // namespace facet
