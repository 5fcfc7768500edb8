#include "core/train/lr_finder.h"

#include "core/train/fused_adamw.h"

#include <torch/torch.h>

#include <cmath>
#include <stdexcept>

namespace facet {

LrFinderResult FindLearningRate(Trainer& trainer, BatchSource& train, const LrFinderOptions& options, bool frozen) {
  if (!(options.start_lr > 0 && options.end_lr > options.start_lr) || options.num_steps < 2) {
    throw std::invalid_argument("lr finder needs 0 < start_lr < end_lr and num_steps >= 2");
  }
  auto& model = trainer.model();
  auto& loss_module = const_cast<MultiTaskLossImpl&>(trainer.loss());
  const c10::Device device = trainer.device();

  // Snapshot everything the sweep changes.
  std::vector<torch::Tensor> saved;
  for (const auto& t : model->parameters()) saved.push_back(t.detach().clone());
  for (const auto& t : model->buffers()) saved.push_back(t.detach().clone());
  for (const auto& t : loss_module.parameters()) saved.push_back(t.detach().clone());
  std::vector<bool> requires_grad;
  for (const auto& p : model->parameters()) requires_grad.push_back(p.requires_grad());

  model->SetEncoderFrozen(frozen);
  std::vector<torch::Tensor> params = model->parameters();
  for (const auto& p : loss_module.parameters()) params.push_back(p);
  FusedAdamW optimizer(params, torch::optim::AdamWOptions(options.start_lr).betas({0.9, 0.99}));

  LrFinderResult result;
  const double ratio = std::pow(options.end_lr / options.start_lr, 1.0 / (options.num_steps - 1));
  double average = 0.0, best = INFINITY;
  int step = 0;
  model->train();
  uint64_t epoch_seed = 0;
  train.StartEpoch(epoch_seed);
  while (step < options.num_steps) {
    auto batch = train.Next();
    if (!batch) {
      train.StartEpoch(++epoch_seed);
      continue;
    }
    const double lr = options.start_lr * std::pow(ratio, step);
    for (auto& group : optimizer.param_groups()) static_cast<torch::optim::AdamWOptions&>(group.options()).lr(lr);
    const auto out = model->forward(batch->images.to(device));
    const auto task_losses =
        loss_module.TaskLosses(out, batch->age.to(device), batch->gender.to(device), batch->ethnicity.to(device));
    const auto loss = loss_module.Combine(task_losses);
    optimizer.zero_grad();
    loss.backward();
    optimizer.step();
    ++step;
    // The curve records the unweighted sum of task losses: always positive (the uncertainty total need not be),
    // so "4x its minimum" means divergence for every weighting.
    const double value = task_losses.sum().item<double>();
    if (!std::isfinite(value)) break;
    average = options.smoothing * average + (1 - options.smoothing) * value;
    const double smoothed = average / (1 - std::pow(options.smoothing, step));
    result.learning_rates.push_back(lr);
    result.smoothed_losses.push_back(smoothed);
    best = std::min(best, smoothed);
    if (step > 1 && smoothed > options.divergence * best) break;
  }

  // Steepest descent of the smoothed loss against log(lr), ignoring the noisy first and last points.
  double steepest = INFINITY;
  for (size_t i = 1; i + 1 < result.smoothed_losses.size(); ++i) {
    const double slope = (result.smoothed_losses[i + 1] - result.smoothed_losses[i - 1]) /
                         (std::log(result.learning_rates[i + 1]) - std::log(result.learning_rates[i - 1]));
    if (slope < steepest) {
      steepest = slope;
      result.suggested_lr = result.learning_rates[i];
    }
  }
  if (result.suggested_lr == 0.0 && !result.learning_rates.empty()) result.suggested_lr = result.learning_rates[0];

  torch::NoGradGuard no_grad;
  size_t i = 0;
  for (auto& t : model->parameters()) t.copy_(saved[i++]);
  for (auto& t : model->buffers()) t.copy_(saved[i++]);
  for (auto& t : loss_module.parameters()) t.copy_(saved[i++]);
  size_t j = 0;
  for (auto& p : model->parameters()) p.set_requires_grad(requires_grad[j++]);
  return result;
}

}  // namespace facet
