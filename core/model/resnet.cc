#include "core/model/resnet.h"

#include "core/model/batch_norm_relu.h"
#include "core/model/max_pool.h"

#include <torch/torch.h>

#include <stdexcept>

namespace facet {
namespace {

namespace nn = torch::nn;

nn::Conv2d Conv(int in, int out, int kernel, int stride) {
  return nn::Conv2d(nn::Conv2dOptions(in, out, kernel).stride(stride).padding(kernel / 2).bias(false));
}

// The projection shortcut: a strided 1x1 convolution and BatchNorm, when a block changes size or width.
nn::Sequential MaybeDownsample(int in, int out, int stride) {
  if (stride == 1 && in == out) return nullptr;
  return nn::Sequential(Conv(in, out, 1, stride), nn::BatchNorm2d(out));
}

// Every BatchNorm followed by a ReLU (with the residual added between them at the end of a block) is one
// BatchNormRelu: on a CPU in training, one fused operation instead of three or four passes over the activation.
// Elsewhere it runs LibTorch's operators, with the ReLU in place as torchvision's ReLU(inplace=True) does. The
// stem's max-pool is MaxPool3x3Stride2, for the same reason (core/model/max_pool.h).

// torchvision BasicBlock (expansion 1).
class BasicBlockImpl : public nn::Module {
 public:
  static constexpr int kExpansion = 1;
  BasicBlockImpl(int in, int planes, int stride)
      : conv1(register_module("conv1", Conv(in, planes, 3, stride))),
        bn1(register_module("bn1", nn::BatchNorm2d(planes))),
        conv2(register_module("conv2", Conv(planes, planes, 3, 1))),
        bn2(register_module("bn2", nn::BatchNorm2d(planes))) {
    if (auto d = MaybeDownsample(in, planes * kExpansion, stride)) downsample = register_module("downsample", d);
  }
  torch::Tensor forward(torch::Tensor x) {
    auto out = BatchNormRelu(*bn1, conv1(x));
    return BatchNormRelu(*bn2, conv2(out), downsample ? downsample->forward(x) : x);
  }
  // Declared in torchvision's order, which is also the registration order.
  nn::Conv2d conv1;
  nn::BatchNorm2d bn1;
  nn::Conv2d conv2;
  nn::BatchNorm2d bn2;
  nn::Sequential downsample{nullptr};
};
TORCH_MODULE(BasicBlock);

// torchvision Bottleneck (ResNet v1.5: the stride sits on the 3x3 convolution; expansion 4).
class BottleneckImpl : public nn::Module {
 public:
  static constexpr int kExpansion = 4;
  BottleneckImpl(int in, int planes, int stride)
      : conv1(register_module("conv1", Conv(in, planes, 1, 1))),
        bn1(register_module("bn1", nn::BatchNorm2d(planes))),
        conv2(register_module("conv2", Conv(planes, planes, 3, stride))),
        bn2(register_module("bn2", nn::BatchNorm2d(planes))),
        conv3(register_module("conv3", Conv(planes, planes * kExpansion, 1, 1))),
        bn3(register_module("bn3", nn::BatchNorm2d(planes * kExpansion))) {
    if (auto d = MaybeDownsample(in, planes * kExpansion, stride)) downsample = register_module("downsample", d);
  }
  torch::Tensor forward(torch::Tensor x) {
    auto out = BatchNormRelu(*bn1, conv1(x));
    out = BatchNormRelu(*bn2, conv2(out));
    return BatchNormRelu(*bn3, conv3(out), downsample ? downsample->forward(x) : x);
  }
  nn::Conv2d conv1;
  nn::BatchNorm2d bn1;
  nn::Conv2d conv2;
  nn::BatchNorm2d bn2;
  nn::Conv2d conv3;
  nn::BatchNorm2d bn3;
  nn::Sequential downsample{nullptr};
};
TORCH_MODULE(Bottleneck);

struct ArchSpec {
  std::array<int, 4> blocks;
  bool bottleneck;
};

ArchSpec SpecOf(Arch arch) {
  switch (arch) {
    case Arch::kResNet18: return {{2, 2, 2, 2}, false};
    case Arch::kResNet34: return {{3, 4, 6, 3}, false};
    case Arch::kResNet50: return {{3, 4, 6, 3}, true};
  }
  throw std::invalid_argument("unknown architecture");
}

void AppendParameters(const nn::Module& m, std::vector<torch::Tensor>& out) {
  for (const auto& p : m.parameters()) out.push_back(p);
}

}  // namespace

ResNetEncoderImpl::ResNetEncoderImpl(const ResNetOptions& options) : options_(options) {
  if (options.base_width < 1) throw std::invalid_argument("base_width must be >= 1");
  const ArchSpec spec = SpecOf(options.arch);
  const int expansion = spec.bottleneck ? BottleneckImpl::kExpansion : BasicBlockImpl::kExpansion;
  const int w = options.base_width;

  conv1_ = register_module("conv1", Conv(3, w, 7, 2));
  bn1_ = register_module("bn1", nn::BatchNorm2d(w));

  int in = w;
  auto make_layer = [&](int planes, int blocks, int stride) {
    nn::Sequential layer;
    for (int i = 0; i < blocks; ++i) {
      const int s = i == 0 ? stride : 1;
      if (spec.bottleneck) {
        layer->push_back(Bottleneck(in, planes, s));
      } else {
        layer->push_back(BasicBlock(in, planes, s));
      }
      in = planes * expansion;
    }
    return layer;
  };
  layer1_ = register_module("layer1", make_layer(w, spec.blocks[0], 1));
  layer2_ = register_module("layer2", make_layer(2 * w, spec.blocks[1], 2));
  layer3_ = register_module("layer3", make_layer(4 * w, spec.blocks[2], 2));
  layer4_ = register_module("layer4", make_layer(8 * w, spec.blocks[3], 2));
  out_channels_ = in;

  // torchvision's initialisation: He (fan_out) for convolutions, BatchNorm as identity.
  for (auto& module : modules(/*include_self=*/false)) {
    if (auto* conv = module->as<nn::Conv2d>()) {
      nn::init::kaiming_normal_(conv->weight, 0.0, torch::kFanOut, torch::kReLU);
    } else if (auto* bn = module->as<nn::BatchNorm2d>()) {
      nn::init::ones_(bn->weight);
      nn::init::zeros_(bn->bias);
    }
  }
}

torch::Tensor ResNetEncoderImpl::forward(torch::Tensor x) {
  x = MaxPool3x3Stride2(BatchNormRelu(*bn1_, conv1_(x)));
  return layer4_->forward(layer3_->forward(layer2_->forward(layer1_->forward(x))));
}

std::vector<torch::Tensor> ResNetEncoderImpl::StemToLayer2Parameters() const {
  std::vector<torch::Tensor> out;
  AppendParameters(*conv1_, out);
  AppendParameters(*bn1_, out);
  AppendParameters(*layer1_, out);
  AppendParameters(*layer2_, out);
  return out;
}

std::vector<torch::Tensor> ResNetEncoderImpl::Layer3ToLayer4Parameters() const {
  std::vector<torch::Tensor> out;
  AppendParameters(*layer3_, out);
  AppendParameters(*layer4_, out);
  return out;
}

}  // namespace facet
