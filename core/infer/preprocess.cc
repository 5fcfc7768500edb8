#include "core/infer/preprocess.h"

#include "core/image/resample.h"

#include <torch/torch.h>

namespace facet {

at::Tensor PreprocessImage(const ImageView& image, int size) {
  // At least 1x1, so that a bad size reaches ResizeToNetworkInput's own error rather than LibTorch's.
  auto out = torch::empty({3, std::max(size, 1), std::max(size, 1)}, torch::kFloat);
  ResizeToNetworkInput(image, size, out.data_ptr<float>());
  return out;
}

}  // namespace facet
