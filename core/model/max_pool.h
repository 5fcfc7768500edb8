// The ResNet stem's 3x3, stride-2, padding-1 max-pool, with a CPU kernel of its own for contiguous NCHW tensors.
//
// LibTorch 1.13's NCHW max-pool forward is a scalar loop whose comparisons branch on the data: for ResNet-34 at
// 64 px, batch 64, it took 17-35 ms of a training step (in bf16 at 96 px, 8% of a ResNet-18 step; it is fast
// only in channels-last, and converting to and from that layout costs as much). The kernel here takes the same
// maximum with the same index (the first maximum in row-major order, NaN winning, as ATen's), without branches, and
// the backward is LibTorch's max_pool2d_with_indices_backward on those indices.
// Thread-safe as LibTorch's operators are; nothing of its own throws (LibTorch's c10::Error on misshapen input).
#pragma once

#include <torch/types.h>

namespace facet {

// max_pool2d(x, kernel 3, stride 2, padding 1) for (N,C,H,W) input: own kernel for contiguous float32 and bfloat16
// CPU tensors (unless ScopedFusedKernels(false) says not to), LibTorch's operator otherwise (CUDA, channels-last,
// other types); the same values and gradients either way, bit for bit.
torch::Tensor MaxPool3x3Stride2(const torch::Tensor& x);

// Whether MaxPool3x3Stride2 takes its own kernel for `x` (for tests and benchmarks).
bool MaxPool3x3Stride2IsFused(const torch::Tensor& x);

}  // namespace facet
