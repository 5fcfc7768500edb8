#include "core/train/mixup.h"

#include <torch/torch.h>

#include <stdexcept>
#include <string>

namespace facet {

MixupDraw DrawMixup(int64_t batch_size, double alpha) {
  if (!(alpha > 0.0)) throw std::invalid_argument("mixup alpha must be > 0, got " + std::to_string(alpha));
  // Beta(a, a) as G1 / (G1 + G2) with G ~ Gamma(a, 1): LibTorch has a Gamma sampler, no Beta one.
  const auto gammas = at::_standard_gamma(torch::full({2}, alpha, torch::kDouble));
  const double g1 = gammas[0].item<double>(), g2 = gammas[1].item<double>();
  MixupDraw draw;
  // Both gammas underflow to 0 for tiny alphas; either image alone is then the right answer.
  draw.lambda = g1 + g2 > 0.0 ? g1 / (g1 + g2) : 1.0;
  draw.partner = torch::randperm(batch_size, torch::kLong);
  return draw;
}

torch::Tensor MixImages(const torch::Tensor& images, const MixupDraw& draw) {
  const auto partner = draw.partner.to(images.device());
  return images * draw.lambda + images.index_select(0, partner) * (1.0 - draw.lambda);
}

torch::Tensor MixedTaskLosses(const MultiTaskLossImpl& loss, const TaskOutputs& outputs,
                              const torch::Tensor& age_target, const torch::Tensor& gender,
                              const torch::Tensor& ethnicity, const MixupDraw& draw) {
  const auto partner = draw.partner.to(age_target.device());
  const auto own = loss.TaskLosses(outputs, age_target, gender, ethnicity);
  const auto other = loss.TaskLosses(outputs, age_target.index_select(0, partner), gender.index_select(0, partner),
                                     ethnicity.index_select(0, partner));
  return own * draw.lambda + other * (1.0 - draw.lambda);
}

}  // namespace facet
