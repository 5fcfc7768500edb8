#include "core/image/resample.h"

#include <cmath>
#include <cstdlib>
#include <stdexcept>
#include <string>
#include <vector>

namespace facet {
namespace {

// OpenCV's BORDER_REFLECT_101: ... 2 1 | 0 1 2 ... n-1 | n-2 ...; coordinates far outside fold back repeatedly.
int Reflect101(int i, int n) {
  if (n == 1) return 0;
  const int period = 2 * (n - 1);
  i = std::abs(i) % period;
  return i < n ? i : period - i;
}

void CheckImageView(const ImageView& image) {
  if (!image.data || image.height < 1 || image.width < 1) throw std::invalid_argument("empty image");
  if (image.channels != 1 && image.channels != 3 && image.channels != 4) {
    throw std::invalid_argument("images must have 1, 3 or 4 channels, got " + std::to_string(image.channels));
  }
}

}  // namespace

void SampleBilinearRgb(const ImageView& image, const double* x, const double* y, size_t count, float* out_rgb) {
  CheckImageView(image);
  const size_t stride = image.row_stride ? image.row_stride : static_cast<size_t>(image.width) * image.channels;
  const int channels = image.channels;
  // Source channel of each RGB output: BGR(A) reversed, gray repeated.
  const int source_channel[3] = {channels == 1 ? 0 : 2, channels == 1 ? 0 : 1, 0};
  for (size_t i = 0; i < count; ++i) {
    const double fx0 = std::floor(x[i]), fy0 = std::floor(y[i]);
    const double ax = x[i] - fx0, ay = y[i] - fy0;
    const int x0 = Reflect101(static_cast<int>(fx0), image.width);
    const int x1 = Reflect101(static_cast<int>(fx0) + 1, image.width);
    const uint8_t* row0 = image.data + stride * Reflect101(static_cast<int>(fy0), image.height);
    const uint8_t* row1 = image.data + stride * Reflect101(static_cast<int>(fy0) + 1, image.height);
    for (int c = 0; c < 3; ++c) {
      const int s = source_channel[c];
      const double top = (1 - ax) * row0[x0 * channels + s] + ax * row0[x1 * channels + s];
      const double bottom = (1 - ax) * row1[x0 * channels + s] + ax * row1[x1 * channels + s];
      out_rgb[c * count + i] = static_cast<float>(((1 - ay) * top + ay * bottom) / 255.0);
    }
  }
}

void NormalizeImageNet(float* rgb_planes, size_t plane) {
  for (int c = 0; c < 3; ++c) {
    float* p = rgb_planes + c * plane;
    for (size_t i = 0; i < plane; ++i) p[i] = static_cast<float>((p[i] - kImageNetMean[c]) / kImageNetStd[c]);
  }
}

void ResizeToNetworkInput(const ImageView& image, int size, float* out_chw) {
  if (size < 1) throw std::invalid_argument("network input size must be >= 1, got " + std::to_string(size));
  const size_t plane = static_cast<size_t>(size) * size;
  std::vector<double> x(plane), y(plane);
  for (int r = 0; r < size; ++r) {
    const double source_y = PixelOfCoordinate(AlignedCornerCoordinate(r, size), image.height);
    for (int c = 0; c < size; ++c) {
      x[static_cast<size_t>(r) * size + c] = PixelOfCoordinate(AlignedCornerCoordinate(c, size), image.width);
      y[static_cast<size_t>(r) * size + c] = source_y;
    }
  }
  SampleBilinearRgb(image, x.data(), y.data(), plane, out_chw);
  NormalizeImageNet(out_chw, plane);
}

}  // namespace facet
