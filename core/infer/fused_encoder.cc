#include "core/infer/fused_encoder.h"

#include <ATen/Context.h>
#include <torch/torch.h>

#include <map>
#include <memory>
#include <stdexcept>
#include <string>

namespace facet {
namespace {

using ModuleMap = std::map<std::string, std::shared_ptr<torch::nn::Module>>;

template <typename Impl>
Impl& Find(const ModuleMap& modules, const std::string& name) {
  const auto it = modules.find(name);
  Impl* module = it == modules.end() ? nullptr : it->second->as<Impl>();
  if (!module) throw std::logic_error("FusedCpuEncoder: the encoder has no module '" + name + "' of the expected type");
  return *module;
}

std::vector<int64_t> Pair(const torch::ExpandingArray<2>& a) { return {(*a)[0], (*a)[1]}; }

}  // namespace

bool FusedCpuEncoder::Supported(const c10::Device& device) { return device.is_cpu() && at::hasMKLDNN(); }

FusedCpuEncoder::FusedCpuEncoder(ResNetEncoderImpl& encoder) {
  torch::NoGradGuard no_grad;
  ModuleMap modules;
  for (const auto& item : encoder.named_modules("", /*include_self=*/false)) modules[item.key()] = item.value();

  // conv(x) then BatchNorm in eval mode is conv'(x) + b with w' = w * s, b = beta - mean * s, s = gamma/sqrt(var+eps).
  auto fold = [&](const std::string& conv_name, const std::string& bn_name) {
    auto& conv = Find<torch::nn::Conv2dImpl>(modules, conv_name);
    auto& bn = Find<torch::nn::BatchNorm2dImpl>(modules, bn_name);
    const auto scale = bn.weight / torch::sqrt(bn.running_var + bn.options.eps());
    const auto weight = (conv.weight * scale.view({-1, 1, 1, 1})).contiguous();
    Conv folded;
    folded.stride = Pair(conv.options.stride());
    // ResNet's convolutions pad by half their kernel (7x7: 3, 3x3: 1, 1x1: 0); see resnet.cc.
    folded.padding = {conv.weight.size(2) / 2, conv.weight.size(3) / 2};
    folded.weight = at::mkldnn_reorder_conv2d_weight(weight.to_mkldnn(), folded.padding, folded.stride, {1, 1}, 1);
    folded.bias = (bn.bias - bn.running_mean * scale).contiguous();
    return folded;
  };
  stem_ = fold("conv1", "bn1");
  for (int layer = 1; layer <= 4; ++layer) {
    for (int i = 0;; ++i) {
      const std::string block = "layer" + std::to_string(layer) + "." + std::to_string(i) + ".";
      if (!modules.count(block + "conv1")) break;
      Block b;
      for (int c = 1; modules.count(block + "conv" + std::to_string(c)); ++c) {
        b.convs.push_back(fold(block + "conv" + std::to_string(c), block + "bn" + std::to_string(c)));
      }
      if (modules.count(block + "downsample.0")) b.shortcut.push_back(fold(block + "downsample.0", block + "downsample.1"));
      blocks_.push_back(std::move(b));
    }
  }
  if (blocks_.empty()) throw std::logic_error("FusedCpuEncoder: no residual blocks found");
}

at::Tensor FusedCpuEncoder::Apply(const Conv& conv, const at::Tensor& x) const {
  return at::mkldnn_convolution(x, conv.weight, conv.bias, conv.padding, conv.stride, {1, 1}, 1);
}

at::Tensor FusedCpuEncoder::forward(const at::Tensor& images) const {
  at::Tensor x = at::max_pool2d(at::relu(Apply(stem_, images.contiguous().to_mkldnn())), {3, 3}, {2, 2}, {1, 1});
  for (const Block& block : blocks_) {
    at::Tensor out = x;
    for (size_t c = 0; c < block.convs.size(); ++c) {
      out = Apply(block.convs[c], out);
      if (c + 1 < block.convs.size()) out = at::relu(out);
    }
    out = at::relu(at::add(out, block.shortcut.empty() ? x : Apply(block.shortcut[0], x)));
    x = out;
  }
  return x.to_dense();
}

}  // namespace facet
