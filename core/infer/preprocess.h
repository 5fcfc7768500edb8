// Turning 8-bit images into the network's input tensor, exactly as validation does. LibTorch only (no OpenCV).
#pragma once

#include "core/image/image_view.h"

#include <ATen/core/Tensor.h>

namespace facet {

// (3,size,size) float: the validation resize (ResizeToNetworkInput in core/image/resample.h) as a tensor.
// Thread-safe. Throws std::invalid_argument on an empty image, a bad channel count or size < 1.
at::Tensor PreprocessImage(const ImageView& image, int size);

}  // namespace facet
