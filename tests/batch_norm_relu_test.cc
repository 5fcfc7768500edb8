#include "core/model/batch_norm_relu.h"
#include "core/model/fused_kernels.h"
#include "core/model/resnet.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <string>
#include <vector>

namespace facet {
namespace {

namespace nn = torch::nn;

// |a - b| relative to b's largest magnitude (and never below an absolute 1e-6 for a tensor of zeros).
double RelativeDifference(const torch::Tensor& a, const torch::Tensor& b) {
  const double scale = std::max(b.abs().max().item<double>(), 1e-6);
  return (a.to(torch::kDouble) - b.to(torch::kDouble)).abs().max().item<double>() / scale;
}

struct Result {
  torch::Tensor y, dx, dresidual, dweight, dbias, running_mean, running_var, batches;
};

// One forward and backward of relu(bn(x) + residual), fused or composed from LibTorch's operators, in `dtype`.
Result RunStep(const nn::BatchNorm2d& prototype, const torch::Tensor& x0, const torch::Tensor& residual0,
           const torch::Tensor& grad, bool fused, torch::Dtype dtype = torch::kFloat) {
  auto bn = std::dynamic_pointer_cast<nn::BatchNorm2dImpl>(prototype->clone());
  bn->to(dtype);
  auto x = x0.to(dtype).clone().requires_grad_();
  torch::Tensor residual = residual0.defined() ? residual0.to(dtype).clone().requires_grad_() : torch::Tensor();
  torch::Tensor y;
  if (fused) {
    EXPECT_TRUE(BatchNormReluIsFused(*bn, x, residual));
    y = BatchNormRelu(*bn, x, residual);
  } else {
    y = bn->forward(x);
    if (residual.defined()) y = y + residual;
    y = y.relu();
  }
  y.backward(grad.to(dtype));
  return {y.detach(),
          x.grad(),
          residual.defined() ? residual.grad() : torch::Tensor(),
          bn->weight.grad(),
          bn->bias.grad(),
          bn->running_mean.clone(),
          bn->running_var.clone(),
          bn->num_batches_tracked.clone()};
}

nn::BatchNorm2d RandomBatchNorm(int channels) {
  nn::BatchNorm2d bn(nn::BatchNorm2dOptions(channels).momentum(0.3));
  torch::NoGradGuard no_grad;
  bn->weight.uniform_(0.5, 1.5);
  bn->bias.uniform_(-0.3, 0.3);
  bn->running_mean.uniform_(-1, 1);
  bn->running_var.uniform_(0.5, 2);
  return bn;
}

// The fused kernel against LibTorch's operators in double: shapes with a remainder after any vector width, a
// single value per image, and a batch of two; with and without the residual.
TEST(BatchNormRelu, TrainingStepMatchesLibTorchsOperatorsInDouble) {
  torch::manual_seed(3);
  const std::vector<std::vector<int64_t>> shapes = {{4, 8, 7, 5}, {3, 16, 1, 1}, {2, 5, 13, 11}, {5, 3, 32, 32}};
  for (const auto& shape : shapes) {
    for (bool with_residual : {false, true}) {
      const std::string what = "shape " + c10::str(torch::IntArrayRef(shape)) +
                               (with_residual ? " with residual" : " without residual");
      auto bn = RandomBatchNorm(static_cast<int>(shape[1]));
      // An offset mean, so that a variance taken in one pass would lose digits.
      const auto x = torch::randn(shape) * 2 + 3;
      const auto residual = with_residual ? torch::randn(shape) : torch::Tensor();
      const auto grad = torch::randn(shape);
      const Result fused = RunStep(bn, x, residual, grad, /*fused=*/true);
      const Result reference = RunStep(bn, x, residual, grad, /*fused=*/false, torch::kDouble);
      EXPECT_LT(RelativeDifference(fused.y, reference.y), 1e-5) << what;
      EXPECT_LT(RelativeDifference(fused.dx, reference.dx), 1e-4) << what;
      EXPECT_LT(RelativeDifference(fused.dweight, reference.dweight), 1e-4) << what;
      EXPECT_LT(RelativeDifference(fused.dbias, reference.dbias), 1e-5) << what;
      EXPECT_LT(RelativeDifference(fused.running_mean, reference.running_mean), 1e-6) << what;
      EXPECT_LT(RelativeDifference(fused.running_var, reference.running_var), 1e-5) << what;
      EXPECT_EQ(fused.batches.item<int64_t>(), 1) << what;
      if (with_residual) {
        EXPECT_LT(RelativeDifference(fused.dresidual, reference.dresidual), 1e-6) << what;
      }
      // About half the outputs are clipped, so the mask is exercised both ways.
      const double zeros = (fused.y == 0).to(torch::kDouble).mean().item<double>();
      EXPECT_GT(zeros, 0.1) << what;
      EXPECT_LT(zeros, 0.9) << what;
    }
  }
}

// Where the kernel does not apply, LibTorch's operators run, with BatchNorm's own semantics.
TEST(BatchNormRelu, OtherModesAndLayoutsRunLibTorchsOperators) {
  torch::manual_seed(4);
  auto bn = RandomBatchNorm(6);
  const auto x = torch::randn({2, 6, 4, 4});
  const auto channels_last = x.contiguous(torch::MemoryFormat::ChannelsLast);
  EXPECT_FALSE(BatchNormReluIsFused(*bn, channels_last));
  EXPECT_FALSE(BatchNormReluIsFused(*bn, x.to(torch::kBFloat16)));  // bf16 autocast's activations
  EXPECT_FALSE(BatchNormReluIsFused(*bn, x, x.to(torch::kBFloat16)));  // a residual of another type
  EXPECT_FALSE(BatchNormReluIsFused(*bn, x, torch::randn({2, 6, 4, 1})));  // a residual of another shape
  EXPECT_FALSE(BatchNormReluIsFused(*bn, torch::randn({1, 6, 1, 1})));    // one value per channel

  const Result composed = RunStep(bn, channels_last, torch::Tensor(), torch::ones_like(x), /*fused=*/false);
  const Result fused = RunStep(bn, x, torch::Tensor(), torch::ones_like(x), /*fused=*/true);
  EXPECT_LT(RelativeDifference(fused.y, composed.y), 1e-6);
  EXPECT_LT(RelativeDifference(fused.dweight, composed.dweight), 1e-5);

  bn->eval();
  EXPECT_FALSE(BatchNormReluIsFused(*bn, x));
  torch::NoGradGuard no_grad;
  const auto expected = (bn->forward(x) + x).relu();
  EXPECT_TRUE(torch::allclose(BatchNormRelu(*bn, x, x), expected));
  EXPECT_EQ(bn->num_batches_tracked.item<int64_t>(), 0) << "evaluation must not count batches";
}

// The running statistics are updated in place without a version bump, as ATen does, so two forwards through the
// same BatchNorm before one backward (a model applied twice) still differentiate.
TEST(BatchNormRelu, TwoForwardsThroughOneBatchNormBeforeOneBackward) {
  torch::manual_seed(5);
  auto bn = RandomBatchNorm(4);
  auto composed = std::dynamic_pointer_cast<nn::BatchNorm2dImpl>(bn->clone());
  const auto a = torch::randn({3, 4, 5, 5}).requires_grad_();
  const auto b = torch::randn({3, 4, 5, 5}).requires_grad_();
  (BatchNormRelu(*bn, a).sum() + BatchNormRelu(*bn, b).square().sum()).backward();
  const auto a2 = a.detach().clone().requires_grad_();
  const auto b2 = b.detach().clone().requires_grad_();
  (composed->forward(a2).relu().sum() + composed->forward(b2).relu().square().sum()).backward();
  EXPECT_LT(RelativeDifference(a.grad(), a2.grad()), 1e-4);
  EXPECT_LT(RelativeDifference(b.grad(), b2.grad()), 1e-4);
  EXPECT_LT(RelativeDifference(bn->weight.grad(), composed->weight.grad()), 1e-4);
  EXPECT_LT(RelativeDifference(bn->running_var, composed->running_var), 1e-6);
  EXPECT_EQ(bn->num_batches_tracked.item<int64_t>(), 2);
}

// The last BatchNorm of every residual branch scaled to 0.2, as in a trained network (and as torchvision's
// zero_init_residual starts them). With identity BatchNorms, as at initialisation, the ReLU masks of the last
// layers amplify float rounding: torchvision's own float and double training steps then differ by up to 20% in
// ResNet-50's gradients (4 faces of 32 px), so no float kernel other than the very same could be compared.
ResNetEncoder WellConditionedEncoder(Arch arch, torch::Dtype dtype) {
  torch::manual_seed(6);
  ResNetEncoder encoder(ResNetOptions{arch, 8});
  const std::string last_bn = arch == Arch::kResNet50 ? "bn3.weight" : "bn2.weight";
  torch::NoGradGuard no_grad;
  for (auto& item : encoder->named_parameters()) {
    const auto& key = item.key();
    if (key.rfind("layer", 0) == 0 && key.size() > last_bn.size() &&
        key.compare(key.size() - last_bn.size(), last_bn.size(), last_bn) == 0) {
      item.value().mul_(0.2);
    }
  }
  encoder->to(dtype);
  return encoder;
}

struct Step {
  torch::Tensor out;
  torch::OrderedDict<std::string, torch::Tensor> gradients, buffers;
};

Step TrainingStep(Arch arch, torch::Dtype dtype, bool own_kernels, const torch::Tensor& x, const torch::Tensor& probe) {
  auto encoder = WellConditionedEncoder(arch, dtype);
  const ScopedFusedKernels kernels(own_kernels);
  Step step;
  step.out = encoder->forward(x.to(dtype));
  step.out.backward(probe.to(dtype));
  for (const auto& item : encoder->named_parameters()) step.gradients.insert(item.key(), item.value().grad());
  step.buffers = encoder->named_buffers();
  return step;
}

// The whole encoder's training step with its own kernels (BatchNorm+ReLU, the stem's max-pool) against LibTorch's
// operators in float and in double: the output, every gradient and every running statistic within 1e-4 of its
// largest magnitude (measured: about 5e-6).
TEST(ResNetEncoder, OwnKernelsGiveTheTrainingStepOfLibTorchsOperators) {
  for (Arch arch : {Arch::kResNet18, Arch::kResNet50}) {
    torch::manual_seed(7);
    const auto x = torch::randn({8, 3, 64, 64});
    const auto probe = torch::randn({8, arch == Arch::kResNet50 ? 256 : 64, 2, 2});
    const Step own = TrainingStep(arch, torch::kFloat, true, x, probe);
    for (const auto& [name, reference] : {std::pair{"float", TrainingStep(arch, torch::kFloat, false, x, probe)},
                                          std::pair{"double", TrainingStep(arch, torch::kDouble, false, x, probe)}}) {
      const std::string what = ArchName(arch) + " against LibTorch's operators in " + name;
      EXPECT_LT(RelativeDifference(own.out, reference.out), 1e-4) << what;
      for (const auto& item : own.gradients) {
        EXPECT_LT(RelativeDifference(item.value(), reference.gradients[item.key()]), 1e-4)
            << what << ": gradient of " << item.key();
      }
      for (const auto& item : own.buffers) {
        EXPECT_LT(RelativeDifference(item.value(), reference.buffers[item.key()]), 1e-4) << what << ": " << item.key();
      }
    }
  }
}

TEST(ScopedFusedKernels, SwitchesTheKernelsOffAndBack) {
  auto bn = RandomBatchNorm(4);
  const auto x = torch::randn({2, 4, 3, 3});
  ASSERT_TRUE(BatchNormReluIsFused(*bn, x));
  {
    const ScopedFusedKernels off(false);
    EXPECT_FALSE(BatchNormReluIsFused(*bn, x));
    {
      const ScopedFusedKernels on(true);
      EXPECT_TRUE(BatchNormReluIsFused(*bn, x));
    }
    EXPECT_FALSE(BatchNormReluIsFused(*bn, x));
  }
  EXPECT_TRUE(BatchNormReluIsFused(*bn, x));
}

}  // namespace
}  // namespace facet
