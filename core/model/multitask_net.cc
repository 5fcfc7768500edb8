#include "core/model/multitask_net.h"

#include "core/labels.h"
#include "core/model/head.h"

#include <torch/torch.h>

namespace facet {

MultiTaskNetImpl::MultiTaskNetImpl(const ResNetOptions& options)
    : encoder_(register_module("encoder", ResNetEncoder(options))) {
  const int channels = encoder_->out_channels();
  age_head_ = register_module("age_head", MakeHead(channels, 1));
  gender_head_ = register_module("gender_head", MakeHead(channels, kNumGenders));
  ethnicity_head_ = register_module("ethnicity_head", MakeHead(channels, kNumEthnicities));
}

TaskOutputs MultiTaskNetImpl::forward(const torch::Tensor& images) { return Heads(encoder_->forward(images)); }

TaskOutputs MultiTaskNetImpl::Heads(const torch::Tensor& features) {
  return {torch::sigmoid(age_head_->forward(features)).squeeze(1), gender_head_->forward(features),
          ethnicity_head_->forward(features)};
}

void MultiTaskNetImpl::SetEncoderFrozen(bool frozen) {
  for (const auto& module : encoder_->modules(/*include_self=*/false)) {
    const bool is_norm = module->as<torch::nn::BatchNorm2d>() != nullptr;
    for (auto& p : module->parameters(/*recurse=*/false)) p.set_requires_grad(!frozen || is_norm);
  }
}

std::vector<std::vector<torch::Tensor>> MultiTaskNetImpl::LayerGroups() const {
  std::vector<torch::Tensor> heads;
  for (const auto* head : {&age_head_, &gender_head_, &ethnicity_head_}) {
    for (const auto& p : (*head)->parameters()) heads.push_back(p);
  }
  return {encoder_->StemToLayer2Parameters(), encoder_->Layer3ToLayer4Parameters(), heads};
}

std::map<std::string, at::Tensor> RenameReferenceKeys(const std::map<std::string, at::Tensor>& reference) {
  // The reference's encoder is nn.Sequential(*children of torchvision's ResNet)[:-2]: indices name the children.
  static const std::pair<const char*, const char*> kRenames[] = {
      {"encoder.0.", "encoder.conv1."},  {"encoder.1.", "encoder.bn1."},    {"encoder.4.", "encoder.layer1."},
      {"encoder.5.", "encoder.layer2."}, {"encoder.6.", "encoder.layer3."}, {"encoder.7.", "encoder.layer4."},
      {"race_head.", "ethnicity_head."}};
  std::map<std::string, at::Tensor> out;
  for (const auto& [key, tensor] : reference) {
    if (key == "log_vars") continue;
    std::string renamed = key;
    for (const auto& [from, to] : kRenames) {
      if (key.rfind(from, 0) == 0) {
        renamed = to + key.substr(std::char_traits<char>::length(from));
        break;
      }
    }
    out[renamed] = tensor;
  }
  return out;
}

}  // namespace facet
