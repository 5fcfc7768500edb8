#include "core/model/head.h"

#include <torch/torch.h>

namespace facet {
namespace {

constexpr int kHiddenUnits = 512;
constexpr double kFirstDropout = 0.125;  // fastai halves ps for the first dropout
constexpr double kSecondDropout = 0.25;

class ConcatPool2dImpl : public torch::nn::Module {
 public:
  torch::Tensor forward(const torch::Tensor& x) {
    return torch::cat({torch::adaptive_avg_pool2d(x, {1, 1}), std::get<0>(torch::adaptive_max_pool2d(x, {1, 1}))}, 1);
  }
};
TORCH_MODULE(ConcatPool2d);

}  // namespace

torch::nn::Sequential MakeHead(int encoder_channels, int outputs) {
  namespace nn = torch::nn;
  const int features = 2 * encoder_channels;
  return nn::Sequential(ConcatPool2d(), nn::Flatten(), nn::BatchNorm1d(features), nn::Dropout(kFirstDropout),
                        nn::Linear(features, kHiddenUnits), nn::ReLU(), nn::BatchNorm1d(kHiddenUnits),
                        nn::Dropout(kSecondDropout), nn::Linear(kHiddenUnits, outputs));
}

}  // namespace facet
