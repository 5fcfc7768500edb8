#include "core/train/weight_average.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

namespace facet {
namespace {

MultiTaskNet TinyNet() {
  torch::manual_seed(5);
  return MultiTaskNet(ResNetOptions{Arch::kResNet18, 4});
}

// The first BatchNorm's running mean and batch counter: a floating and an integer buffer.
at::Tensor RunningMean(MultiTaskNet& net) { return net->named_buffers()["encoder.bn1.running_mean"]; }
at::Tensor BatchesTracked(MultiTaskNet& net) { return net->named_buffers()["encoder.bn1.num_batches_tracked"]; }
at::Tensor FirstWeight(MultiTaskNet& net) { return net->named_parameters()["encoder.conv1.weight"]; }

TEST(WeightAverage, StartsAsACopyThatDoesNotFollowTheSourceUntilUpdated) {
  MultiTaskNet net = TinyNet();
  WeightAverage average(net, 0.9);
  const auto before = FirstWeight(net).detach().clone();
  EXPECT_TRUE(torch::equal(FirstWeight(average.model()), before));
  EXPECT_FALSE(average.model()->is_training()) << "the average only ever evaluates";
  torch::NoGradGuard no_grad;
  FirstWeight(net).add_(1.0);
  EXPECT_TRUE(torch::equal(FirstWeight(average.model()), before)) << "a copy, not an alias";
}

TEST(WeightAverage, EachUpdateMovesByThatStepsDecayAndCopiesIntegerBuffers) {
  MultiTaskNet net = TinyNet();
  WeightAverage average(net, 0.9);
  EXPECT_DOUBLE_EQ(average.DecayAt(0), 0.1);           // (1 + 0) / (10 + 0): early steps mostly follow
  EXPECT_DOUBLE_EQ(average.DecayAt(80), 81.0 / 90.0);  // still ramping
  EXPECT_DOUBLE_EQ(average.DecayAt(1000), 0.9);        // the configured decay from then on

  const auto w0 = FirstWeight(net).detach().clone();
  const auto m0 = RunningMean(net).clone();
  {
    torch::NoGradGuard no_grad;
    FirstWeight(net).add_(1.0);
    RunningMean(net).add_(2.0);
    BatchesTracked(net).fill_(7);
  }
  average.Update(0);  // keeps 0.1 of the old average
  EXPECT_TRUE(torch::allclose(FirstWeight(average.model()), w0 + 0.9, 1e-5, 1e-6));
  EXPECT_TRUE(torch::allclose(RunningMean(average.model()), m0 + 1.8, 1e-5, 1e-6));
  EXPECT_EQ(BatchesTracked(average.model()).item<int64_t>(), 7);

  {
    torch::NoGradGuard no_grad;
    FirstWeight(net).add_(1.0);  // now w0 + 2; the average is 1.1 behind
  }
  average.Update(1000);  // keeps 0.9: moves 0.1 of the gap
  EXPECT_TRUE(torch::allclose(FirstWeight(average.model()), w0 + 0.9 + 0.11, 1e-5, 1e-6));
}

TEST(WeightAverage, RestartCopiesTheSourceAndBadDecaysAreRefused) {
  MultiTaskNet net = TinyNet();
  WeightAverage average(net, 0.99);
  {
    torch::NoGradGuard no_grad;
    FirstWeight(net).mul_(3.0);
  }
  average.Restart();
  EXPECT_TRUE(torch::equal(FirstWeight(average.model()), FirstWeight(net)));
  EXPECT_THROW(WeightAverage(net, 1.0), std::invalid_argument);
  EXPECT_THROW(WeightAverage(net, -0.1), std::invalid_argument);
}

}  // namespace
}  // namespace facet
