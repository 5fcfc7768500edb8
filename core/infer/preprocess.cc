#include "core/infer/preprocess.h"

#include <torch/torch.h>

#include <stdexcept>
#include <string>

namespace facet {

at::Tensor PreprocessImage(const ImageView& image, int size) {
  if (!image.data || image.height < 1 || image.width < 1) throw std::invalid_argument("empty image");
  if (image.channels != 1 && image.channels != 3 && image.channels != 4) {
    throw std::invalid_argument("images must have 1, 3 or 4 channels, got " + std::to_string(image.channels));
  }
  if (size < 1) throw std::invalid_argument("preprocess size must be >= 1");
  const int64_t stride = image.row_stride ? static_cast<int64_t>(image.row_stride) : image.width * image.channels;
  // from_blob borrows; the float conversion below copies, so the caller's buffer is not kept.
  auto hwc = torch::from_blob(const_cast<uint8_t*>(image.data), {image.height, image.width, image.channels},
                              {stride, image.channels, 1}, torch::kUInt8);
  torch::Tensor rgb;
  if (image.channels == 1) {
    rgb = hwc.expand({image.height, image.width, 3});
  } else {
    rgb = hwc.index({torch::indexing::Slice(), torch::indexing::Slice(), torch::tensor({2, 1, 0})});  // BGR -> RGB
  }
  auto chw = rgb.permute({2, 0, 1}).to(torch::kFloat).div_(255.0f).unsqueeze(0);
  if (image.height != size || image.width != size) {
    namespace F = torch::nn::functional;
    chw = F::interpolate(chw, F::InterpolateFuncOptions()
                                  .size(std::vector<int64_t>{size, size})
                                  .mode(torch::kBilinear)
                                  .align_corners(true));
  }
  const auto mean = torch::tensor({kImageNetMean[0], kImageNetMean[1], kImageNetMean[2]}).view({1, 3, 1, 1});
  const auto std = torch::tensor({kImageNetStd[0], kImageNetStd[1], kImageNetStd[2]}).view({1, 3, 1, 1});
  return ((chw - mean) / std).squeeze(0).contiguous();
}

}  // namespace facet
