#include "core/train/fused_adamw.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <algorithm>
#include <sstream>

namespace facet {
namespace {

using torch::optim::AdamW;
using torch::optim::AdamWOptions;
using torch::optim::OptimizerParamGroup;

// Parameters of awkward sizes (a remainder after any vector width, one scalar) and a channels-last kernel, in two
// groups with different learning rates and decays, as the trainer builds them.
std::vector<torch::Tensor> MakeParameters(uint64_t seed) {
  torch::manual_seed(seed);
  std::vector<torch::Tensor> params = {torch::randn({64, 3, 3, 3}), torch::randn({100003}), torch::randn({1}),
                                       torch::randn({17, 33}),
                                       torch::randn({32, 16, 3, 3}).contiguous(torch::MemoryFormat::ChannelsLast)};
  for (auto& p : params) p.set_requires_grad(true);
  return params;
}

std::vector<OptimizerParamGroup> MakeGroups(const std::vector<torch::Tensor>& params) {
  std::vector<OptimizerParamGroup> groups;
  groups.emplace_back(std::vector<torch::Tensor>(params.begin(), params.begin() + 3),
                      std::make_unique<AdamWOptions>(AdamWOptions(3e-3).weight_decay(1e-2).betas({0.95, 0.99})));
  groups.emplace_back(std::vector<torch::Tensor>(params.begin() + 3, params.end()),
                      std::make_unique<AdamWOptions>(AdamWOptions(1e-3).weight_decay(0.0).betas({0.9, 0.999})));
  return groups;
}

// Gradients like a training run's: different every step, some parameters without one on some steps.
void SetGradients(std::vector<torch::Tensor>& params, int step) {
  torch::manual_seed(1000 + step);
  for (size_t i = 0; i < params.size(); ++i) {
    if (i == 2 && step % 3 == 1) {
      params[i].mutable_grad() = torch::Tensor();
      continue;
    }
    params[i].mutable_grad() = torch::randn_like(params[i]) * (0.01 * (step + 1));
  }
}

double MaxRelativeDifference(const std::vector<torch::Tensor>& a, const std::vector<torch::Tensor>& b,
                             const std::vector<torch::Tensor>& start) {
  double worst = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    const double moved = (b[i] - start[i]).abs().max().item<double>();
    worst = std::max(worst, (a[i] - b[i]).abs().max().item<double>() / moved);
  }
  return worst;
}

// The largest difference over the largest magnitude: rounding-sized for equal arithmetic, even where the moments
// pass through zero.
double ScaledDifference(const torch::Tensor& a, const torch::Tensor& b) {
  return (a - b).abs().max().item<double>() / b.abs().max().item<double>();
}

TEST(FusedAdamW, UpdatesLikeLibTorchsAdamW) {
  auto fused_params = MakeParameters(7), plain_params = MakeParameters(7);
  std::vector<torch::Tensor> start;
  for (const auto& p : plain_params) start.push_back(p.detach().clone());
  FusedAdamW fused(MakeGroups(fused_params));
  AdamW plain(MakeGroups(plain_params));
  for (int step = 0; step < 20; ++step) {
    SetGradients(fused_params, step);
    SetGradients(plain_params, step);
    // The trainer changes the learning rate and beta1 every step (one-cycle); so does this test.
    for (auto* optimizer : {static_cast<torch::optim::Optimizer*>(&fused), static_cast<torch::optim::Optimizer*>(&plain)}) {
      auto& options = static_cast<AdamWOptions&>(optimizer->param_groups()[0].options());
      options.lr(3e-3 * (1 + step) / 20).betas({0.95 - 0.005 * step, 0.99});
    }
    fused.step();
    plain.step();
  }
  EXPECT_EQ(fused.fused_steps(), 20);
  std::vector<torch::Tensor> fused_now, plain_now;
  for (const auto& p : fused_params) fused_now.push_back(p.detach());
  for (const auto& p : plain_params) plain_now.push_back(p.detach());
  // Float rounding only: the same operations in the same order, some contracted differently by the compiler.
  EXPECT_LT(MaxRelativeDifference(fused_now, plain_now, start), 1e-4);
  // And the moments and step counts, which a checkpoint carries.
  for (size_t i = 0; i < fused_params.size(); ++i) {
    const auto key = OptimizerStateKey(fused.state(), fused_params[i]);
    const auto plain_key = OptimizerStateKey(plain.state(), plain_params[i]);
    const auto& a = static_cast<torch::optim::AdamWParamState&>(*fused.state().at(key));
    const auto& b = static_cast<torch::optim::AdamWParamState&>(*plain.state().at(plain_key));
    EXPECT_EQ(a.step(), b.step()) << "parameter " << i;
    EXPECT_LT(ScaledDifference(a.exp_avg(), b.exp_avg()), 1e-6) << "parameter " << i;
    EXPECT_LT(ScaledDifference(a.exp_avg_sq(), b.exp_avg_sq()), 1e-6) << "parameter " << i;
    EXPECT_TRUE(a.exp_avg().is_contiguous(fused_params[i].suggest_memory_format())) << "parameter " << i;
  }
}

TEST(FusedAdamW, BumpsTheVersionsOfWhatItWrites) {
  auto params = MakeParameters(3);
  FusedAdamW optimizer(MakeGroups(params));
  SetGradients(params, 0);
  std::vector<uint32_t> before;
  for (const auto& p : params) before.push_back(p._version());
  optimizer.step();
  ASSERT_EQ(optimizer.fused_steps(), 1);
  for (size_t i = 0; i < params.size(); ++i) EXPECT_GT(params[i]._version(), before[i]) << "parameter " << i;
}

TEST(FusedAdamW, CheckpointsLoadIntoAdamWAndBack) {
  auto params = MakeParameters(11), copy = MakeParameters(11);
  FusedAdamW fused(MakeGroups(params));
  for (int step = 0; step < 3; ++step) {
    SetGradients(params, step);
    fused.step();
  }
  std::stringstream stream;
  {
    torch::serialize::OutputArchive archive;
    fused.save(archive);
    archive.save_to(stream);
  }
  {
    torch::NoGradGuard no_grad;
    for (size_t i = 0; i < params.size(); ++i) copy[i].copy_(params[i]);
  }
  AdamW plain(MakeGroups(copy));
  torch::serialize::InputArchive archive;
  archive.load_from(stream);
  plain.load(archive);
  // One more step each from the same state: the same update.
  SetGradients(params, 3);
  SetGradients(copy, 3);
  std::vector<torch::Tensor> start;
  for (const auto& p : params) start.push_back(p.detach().clone());
  fused.step();
  plain.step();
  std::vector<torch::Tensor> a, b;
  for (const auto& p : params) a.push_back(p.detach());
  for (const auto& p : copy) b.push_back(p.detach());
  EXPECT_LT(MaxRelativeDifference(a, b, start), 1e-4);
}

TEST(FusedAdamW, FallsBackToAdamWWhereItCannotFuse) {
  auto params = MakeParameters(5), plain_params = MakeParameters(5);
  auto groups = MakeGroups(params), plain_groups = MakeGroups(plain_params);
  static_cast<AdamWOptions&>(groups[1].options()).amsgrad(true);
  static_cast<AdamWOptions&>(plain_groups[1].options()).amsgrad(true);
  FusedAdamW fused(std::move(groups));
  AdamW plain(std::move(plain_groups));
  for (int step = 0; step < 3; ++step) {
    SetGradients(params, step);
    SetGradients(plain_params, step);
    fused.step();
    plain.step();
  }
  EXPECT_EQ(fused.fused_steps(), 0);
  for (size_t i = 0; i < params.size(); ++i) EXPECT_TRUE(torch::equal(params[i], plain_params[i])) << i;

  // A double-precision parameter is not fused either, and is still updated.
  auto p = torch::randn({10}, torch::kDouble).set_requires_grad(true);
  const auto before = p.detach().clone();
  FusedAdamW for_double(std::vector<torch::Tensor>{p});
  p.mutable_grad() = torch::ones_like(p);
  for_double.step();
  EXPECT_EQ(for_double.fused_steps(), 0);
  EXPECT_FALSE(torch::equal(p.detach(), before));
}

}  // namespace
}  // namespace facet
