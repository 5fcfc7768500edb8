// relu(batch_norm(x) + residual) as one operation: the ending of every ResNet convolution but the last of a block.
//
// Composed from LibTorch's operators, a training step makes separate passes over the activation for the
// normalisation, the residual add, the ReLU and, backward, the ReLU's mask; each is a full read and write of a tensor
// that does not fit in cache, and together they were about a tenth of a CPU training step (tests/bench/profile.md).
// The fused CPU path works channel by channel, so that a channel's slice is read from memory once and stays in
// cache for its statistics, its normalisation and its ReLU; backward, the mask is applied on the way through.
// Thread-safe as LibTorch's operators are; nothing of its own throws (LibTorch's c10::Error on misshapen input).
#pragma once

#include <torch/nn/modules/batchnorm.h>

namespace facet {

// relu(bn(x) + residual), or relu(bn(x)) when `residual` is undefined, with BatchNorm2d's semantics in training and
// evaluation (batch statistics, running statistics updated with its momentum, num_batches_tracked counted).
// Takes the fused path for a training-mode, affine BatchNorm with running statistics and a momentum, on
// contiguous float32 CPU tensors, unless ScopedFusedKernels(false) says not to; otherwise (CUDA, bf16 autocast,
// channels-last, evaluation) it runs LibTorch's operators, with the same results to float rounding. (In bf16,
// LibTorch's kernels are built for AVX-512 and convert with it; this kernel, built for the baseline x86-64 ISA, was
// slower there.)
torch::Tensor BatchNormRelu(torch::nn::BatchNorm2dImpl& bn, const torch::Tensor& x,
                            const torch::Tensor& residual = {});

// Whether BatchNormRelu takes the fused path for these arguments (for tests and benchmarks).
bool BatchNormReluIsFused(const torch::nn::BatchNorm2dImpl& bn, const torch::Tensor& x,
                          const torch::Tensor& residual = {});

}  // namespace facet
