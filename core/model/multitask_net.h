// The multi-task network: one shared ResNet encoder, one head per task.
// Not thread-safe for training (torch::nn::Module); in eval mode under InferenceMode, forward may run on several
// threads at once. Throws nothing of its own (LibTorch's c10::Error on misshapen input).
#pragma once

#include "core/model/resnet.h"

#include <torch/nn/modules/container/sequential.h>

#include <map>
#include <string>
#include <vector>

namespace facet {

struct TaskOutputs {
  torch::Tensor age;        // (N) in (0,1): the scaled log-age (see AgeToTarget)
  torch::Tensor gender;     // (N,2) logits
  torch::Tensor ethnicity;  // (N,5) logits
};

// Parameter names: `encoder.<torchvision name>`, `age_head.<i>`, `gender_head.<i>`, `ethnicity_head.<i>`.
class MultiTaskNetImpl : public torch::nn::Module {
 public:
  explicit MultiTaskNetImpl(const ResNetOptions& options);

  TaskOutputs forward(const torch::Tensor& images);
  // The heads alone, on encoder features (N, C, h, w): forward(x) == Heads(encoder()->forward(x)).
  TaskOutputs Heads(const torch::Tensor& features);

  ResNetEncoder& encoder() { return encoder_; }
  const ResNetOptions& options() const { return encoder_->options(); }

  // Stage 1 of the recipe freezes the encoder except its BatchNorm layers (fastai's freeze with train_bn);
  // stage 2 trains everything.
  void SetEncoderFrozen(bool frozen);

  // Three layer groups for discriminative learning rates: stem..layer2, layer3..layer4, heads.
  std::vector<std::vector<torch::Tensor>> LayerGroups() const;

 private:
  ResNetEncoder encoder_{nullptr};
  torch::nn::Sequential age_head_{nullptr}, gender_head_{nullptr}, ethnicity_head_{nullptr};
};
TORCH_MODULE(MultiTaskNet);

// Renames a state dict saved by the plain-PyTorch reference (`encoder.0.weight`, `race_head.4.bias`, ...) to this
// model's names (`encoder.conv1.weight`, `ethnicity_head.4.bias`); its `log_vars` is dropped. Other keys pass
// through unchanged, so LoadStateDict still reports whatever does not fit.
std::map<std::string, at::Tensor> RenameReferenceKeys(const std::map<std::string, at::Tensor>& reference);

}  // namespace facet
