// ResNet-18/34/50 encoders (torchvision layout and parameter names, without avgpool and fc).
// Modules are not thread-safe (torch::nn::Module); an eval-mode module under InferenceMode may be read by several
// threads (the Predictor does). Construction throws std::invalid_argument for a base width < 1.
#pragma once

#include "core/model/arch.h"

#include <torch/nn/module.h>
#include <torch/nn/modules/batchnorm.h>
#include <torch/nn/modules/container/sequential.h>
#include <torch/nn/modules/conv.h>

#include <string>
#include <vector>

namespace facet {

struct ResNetOptions {
  Arch arch = Arch::kResNet34;
  // Channels of the stem and of layer1; layers 2..4 double it. 64 is torchvision's ResNet; tests use 8-16 for speed.
  int base_width = 64;
};

// Encoder of a torchvision ResNet: conv1, bn1, relu, maxpool, layer1..layer4. Keys match torchvision's
// state_dict (`conv1.weight`, `layer1.0.conv1.weight`, `layer2.0.downsample.0.weight`, ...), so a torchvision
// state dict loads without renaming (its `fc.*` keys belong to the classifier this encoder drops).
class ResNetEncoderImpl : public torch::nn::Module {
 public:
  explicit ResNetEncoderImpl(const ResNetOptions& options);

  torch::Tensor forward(torch::Tensor x);  // (N,3,H,W) -> (N, out_channels, H/32, W/32)

  int out_channels() const { return out_channels_; }
  const ResNetOptions& options() const { return options_; }

  // Discriminative LR groups: the stem with layer1..2, and layer3..4.
  std::vector<torch::Tensor> StemToLayer2Parameters() const;
  std::vector<torch::Tensor> Layer3ToLayer4Parameters() const;

 private:
  ResNetOptions options_;
  int out_channels_ = 0;
  torch::nn::Conv2d conv1_{nullptr};
  torch::nn::BatchNorm2d bn1_{nullptr};
  torch::nn::Sequential layer1_{nullptr}, layer2_{nullptr}, layer3_{nullptr}, layer4_{nullptr};
};
TORCH_MODULE(ResNetEncoder);

}  // namespace facet
