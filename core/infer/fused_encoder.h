// An inference-only copy of a ResNet encoder for CPUs: every BatchNorm folded into the convolution before it, the
// weights pre-packed for oneDNN, and activations kept in oneDNN's blocked layout from the first convolution to the
// last (LibTorch's default NCHW path converts layouts around every convolution). About 1.3-2.3x faster on CPU
// (docs/benchmarks.md); equal to the module in eval mode within float rounding (tested to 1e-4).
// Thread-safe once built: forward only reads the folded weights. Building throws std::logic_error for an encoder that is
// not laid out as a ResNet's.
#pragma once

#include "core/model/resnet.h"

#include <ATen/core/Tensor.h>
#include <c10/core/Device.h>

#include <vector>

namespace facet {

class FusedCpuEncoder {
 public:
  // True when LibTorch has oneDNN (MKLDNN) and `device` is the CPU.
  static bool Supported(const c10::Device& device);

  // Copies and folds the encoder's current weights and BatchNorm statistics (eval-mode semantics).
  explicit FusedCpuEncoder(ResNetEncoderImpl& encoder);

  // (N,3,H,W) float on the CPU -> the encoder's (N,C,h,w) features, as a dense tensor.
  at::Tensor forward(const at::Tensor& images) const;

 private:
  struct Conv {
    at::Tensor weight;  // oneDNN-packed, BatchNorm folded in
    at::Tensor bias;    // BatchNorm's shift
    std::vector<int64_t> stride, padding;
  };
  struct Block {
    std::vector<Conv> convs;     // 2 (basic) or 3 (bottleneck); a ReLU follows each but the last
    std::vector<Conv> shortcut;  // empty, or the projection's one convolution
  };
  at::Tensor Apply(const Conv& conv, const at::Tensor& x) const;

  Conv stem_;
  std::vector<Block> blocks_;
};

}  // namespace facet
