#include "core/infer/fused_encoder.h"
#include "core/infer/predictor.h"
#include "core/model/multitask_net.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

namespace facet {
namespace {

// Random weights and BatchNorm statistics far from the identity, so that a fold that forgot a term disagrees.
MultiTaskNet RandomModel(Arch arch, uint64_t seed) {
  torch::manual_seed(seed);
  MultiTaskNet model(ResNetOptions{arch, 8});
  torch::NoGradGuard no_grad;
  for (auto& b : model->named_buffers()) {
    if (b.key().find("running_mean") != std::string::npos) b.value().uniform_(-0.3, 0.3);
    if (b.key().find("running_var") != std::string::npos) b.value().uniform_(0.5, 2.0);
  }
  for (auto& p : model->named_parameters()) {
    if (p.key().find("bn") != std::string::npos || p.key().find("downsample.1") != std::string::npos) {
      p.value().uniform_(p.key().find("weight") != std::string::npos ? 0.5 : -0.2,
                         p.key().find("weight") != std::string::npos ? 1.5 : 0.2);
    }
  }
  model->eval();
  return model;
}

TEST(FusedCpuEncoder, EqualsTheModuleInEvalModeForEveryArchitecture) {
  if (!FusedCpuEncoder::Supported(torch::kCPU)) GTEST_SKIP() << "this LibTorch has no oneDNN (MKLDNN)";
  for (Arch arch : {Arch::kResNet18, Arch::kResNet34, Arch::kResNet50}) {
    SCOPED_TRACE(ArchName(arch));
    MultiTaskNet model = RandomModel(arch, 3);
    const FusedCpuEncoder fused(*model->encoder());
    for (int64_t size : {32, 64, 75}) {  // 75: odd sizes exercise the strided convolutions' padding
      const auto x = torch::randn({3, 3, size, size});
      torch::InferenceMode inference;
      const auto expected = model->encoder()->forward(x);
      const auto actual = fused.forward(x);
      ASSERT_EQ(actual.sizes(), expected.sizes());
      EXPECT_FALSE(actual.is_mkldnn());
      const double scale = expected.abs().max().item<double>();
      EXPECT_GT(scale, 0.1);
      EXPECT_LT((actual - expected).abs().max().item<double>(), 1e-4 * std::max(1.0, scale)) << "size " << size;
    }
  }
}

TEST(FusedCpuEncoder, APredictorGivesTheSameAnswersWithAndWithoutIt) {
  MultiTaskNet model = RandomModel(Arch::kResNet34, 5);
  PredictorOptions plain{"cpu"};
  plain.fuse_cpu_encoder = false;
  PredictorOptions fused{"cpu"};
  fused.flip_average = plain.flip_average = true;
  const Predictor a(model, 48, plain), b(model, 48, fused);
  const auto batch = torch::randn({6, 3, 48, 48});
  const auto pa = a.PredictTensor(batch), pb = b.PredictTensor(batch);
  ASSERT_EQ(pa.size(), pb.size());
  for (size_t i = 0; i < pa.size(); ++i) {
    EXPECT_NEAR(pa[i].age_years, pb[i].age_years, 1e-4 * pa[i].age_years);
    for (int c = 0; c < kNumGenders; ++c) EXPECT_NEAR(pa[i].gender_probabilities[c], pb[i].gender_probabilities[c], 1e-4);
    for (int c = 0; c < kNumEthnicities; ++c) {
      EXPECT_NEAR(pa[i].ethnicity_probabilities[c], pb[i].ethnicity_probabilities[c], 1e-4);
    }
  }
}

}  // namespace
}  // namespace facet
