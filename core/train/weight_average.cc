#include "core/train/weight_average.h"

#include <torch/torch.h>

#include <algorithm>
#include <stdexcept>
#include <string>

namespace facet {
namespace {

// Parameters, then buffers, in the module's order; the tensors themselves (callers hold a NoGradGuard).
std::vector<at::Tensor> TensorsOf(const MultiTaskNet& model) {
  std::vector<at::Tensor> tensors = model->parameters();
  for (const auto& b : model->buffers()) tensors.push_back(b);
  return tensors;
}

}  // namespace

WeightAverage::WeightAverage(MultiTaskNet source, double decay)
    : decay_(decay), source_(std::move(source)), average_(MultiTaskNet(source_->options())) {
  if (!(decay >= 0.0 && decay < 1.0)) {
    throw std::invalid_argument("weight average: the decay must be in [0, 1), got " + std::to_string(decay));
  }
  const auto from = TensorsOf(source_);
  auto to = TensorsOf(average_);
  if (from.size() != to.size()) throw std::logic_error("weight average: the two models' layouts differ");
  torch::NoGradGuard no_grad;
  for (size_t i = 0; i < from.size(); ++i) {
    // set_data, not copy_: the average takes the source's device and memory format (channels-last).
    to[i].set_data(from[i].detach().clone());
  }
  for (auto& p : average_->parameters()) p.set_requires_grad(false);
  average_->eval();
}

double WeightAverage::DecayAt(int64_t update) const {
  const double t = static_cast<double>(std::max<int64_t>(update, 0));
  return std::min(decay_, (1.0 + t) / (10.0 + t));
}

void WeightAverage::Restart() {
  torch::NoGradGuard no_grad;
  const auto from = TensorsOf(source_);
  auto to = TensorsOf(average_);
  for (size_t i = 0; i < from.size(); ++i) to[i].copy_(from[i]);
}

void WeightAverage::Update(int64_t update) {
  const double keep = DecayAt(update);
  torch::NoGradGuard no_grad;
  const auto from = TensorsOf(source_);
  auto to = TensorsOf(average_);
  for (size_t i = 0; i < from.size(); ++i) {
    if (to[i].is_floating_point()) {
      to[i].lerp_(from[i], 1.0 - keep);
    } else {
      to[i].copy_(from[i]);
    }
  }
}

}  // namespace facet
