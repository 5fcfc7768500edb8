#include "core/model/multitask_net.h"
#include "core/model/state_dict.h"
#include "tests/test_util.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <fstream>

namespace facet {
namespace {

TEST(MultiTaskNet, OutputsHaveOneShapePerTask) {
  for (Arch arch : {Arch::kResNet18, Arch::kResNet34, Arch::kResNet50}) {
    MultiTaskNet net(ResNetOptions{arch, 8});
    net->eval();
    const auto out = net->forward(torch::randn({3, 3, 64, 64}));
    EXPECT_EQ(out.age.sizes(), (std::vector<int64_t>{3})) << ArchName(arch);
    EXPECT_EQ(out.gender.sizes(), (std::vector<int64_t>{3, 2})) << ArchName(arch);
    EXPECT_EQ(out.ethnicity.sizes(), (std::vector<int64_t>{3, 5})) << ArchName(arch);
    // A sigmoid output; a random ResNet-50's logits can saturate it to exactly 0 or 1 in float.
    EXPECT_TRUE(((out.age >= 0) & (out.age <= 1)).all().item<bool>()) << "age goes through a sigmoid";
  }
}

TEST(ResNetEncoder, UsesTorchvisionNamesAndSizes) {
  ResNetEncoder r34(ResNetOptions{Arch::kResNet34, 64});
  const auto sd = StateDict(*r34);
  for (const char* key : {"conv1.weight", "bn1.running_mean", "bn1.num_batches_tracked", "layer1.0.conv1.weight",
                          "layer2.0.downsample.0.weight", "layer2.0.downsample.1.running_var",
                          "layer3.5.bn2.bias", "layer4.2.conv2.weight"}) {
    EXPECT_TRUE(sd.count(key)) << key;
  }
  EXPECT_FALSE(sd.count("layer1.0.downsample.0.weight"));
  EXPECT_EQ(sd.at("layer4.2.conv2.weight").sizes(), (std::vector<int64_t>{512, 512, 3, 3}));
  int64_t params = 0;
  for (const auto& p : r34->parameters()) params += p.numel();
  EXPECT_EQ(params, 21284672);  // torchvision resnet34 (21,797,672) minus fc (513,000)
  EXPECT_EQ(r34->out_channels(), 512);
  EXPECT_EQ(ResNetEncoder(ResNetOptions{Arch::kResNet50, 64})->out_channels(), 2048);
  EXPECT_TRUE(StateDict(*ResNetEncoder(ResNetOptions{Arch::kResNet50, 8})).count("layer1.0.conv3.weight"));
}

TEST(MultiTaskNet, FreezingLeavesOnlyEncoderBatchNormTrainable) {
  MultiTaskNet net(ResNetOptions{Arch::kResNet18, 8});
  net->SetEncoderFrozen(true);
  for (const auto& p : net->named_parameters()) {
    const bool encoder = p.key().rfind("encoder.", 0) == 0;
    const bool norm = p.key().find("bn") != std::string::npos || p.key().find("downsample.1") != std::string::npos;
    EXPECT_EQ(p.value().requires_grad(), !encoder || norm) << p.key();
  }
  net->SetEncoderFrozen(false);
  for (const auto& p : net->parameters()) EXPECT_TRUE(p.requires_grad());
}

TEST(MultiTaskNet, LayerGroupsPartitionTheParameters) {
  MultiTaskNet net(ResNetOptions{Arch::kResNet18, 8});
  size_t grouped = 0;
  for (const auto& group : net->LayerGroups()) grouped += group.size();
  EXPECT_EQ(grouped, net->parameters().size());
}

TEST(LoadStateDict, NamesEveryMissingUnexpectedAndMisshapedKey) {
  ResNetEncoder encoder(ResNetOptions{Arch::kResNet18, 8});
  TensorMap sd = StateDict(*encoder);
  for (auto& [k, v] : sd) v = v.clone();
  sd.erase("layer1.0.conv1.weight");
  sd["layer9.weight"] = torch::zeros({1});
  sd["conv1.weight"] = torch::zeros({1, 2, 3});
  const auto before = encoder->named_parameters()["bn1.weight"].clone();
  sd["bn1.weight"] = torch::full_like(before, 7.0);
  try {
    LoadStateDict(*encoder, sd);
    FAIL() << "expected an error";
  } catch (const std::invalid_argument& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("missing keys [layer1.0.conv1.weight]"), std::string::npos) << m;
    EXPECT_NE(m.find("unexpected keys [layer9.weight]"), std::string::npos) << m;
    EXPECT_NE(m.find("conv1.weight (file [1, 2, 3], model [8, 3, 7, 7])"), std::string::npos) << m;
  }
  EXPECT_TRUE(torch::equal(encoder->named_parameters()["bn1.weight"], before)) << "a failed load changes nothing";
}

TEST(LoadStateDict, IgnoresTorchvisionsClassifierWhenAsked) {
  ResNetEncoder source(ResNetOptions{Arch::kResNet18, 8}), target(ResNetOptions{Arch::kResNet18, 8});
  TensorMap sd = StateDict(*source);
  sd["fc.weight"] = torch::zeros({1000, 64});
  sd["fc.bias"] = torch::zeros({1000});
  EXPECT_THROW(LoadStateDict(*target, sd), std::invalid_argument);
  LoadStateDict(*target, sd, LoadOptions{"", {"fc."}});
  EXPECT_TRUE(torch::equal(target->named_parameters()["conv1.weight"], source->named_parameters()["conv1.weight"]));
}

TEST(TensorFile, RoundTripsAndReportsBadFiles) {
  testing::TempDir dir;
  TensorMap in{{"a", torch::arange(6).view({2, 3})}, {"b.c", torch::randn({4})}};
  WriteTensorFile(dir / "t.pt", in);
  const TensorMap out = ReadTensorFile(dir / "t.pt");
  ASSERT_EQ(out.size(), 2u);
  EXPECT_TRUE(torch::equal(out.at("a"), in.at("a")));
  EXPECT_TRUE(torch::equal(out.at("b.c"), in.at("b.c")));
  EXPECT_THROW(ReadTensorFile(dir / "missing.pt"), std::runtime_error);
  std::ofstream(dir / "junk.pt") << "junk";
  EXPECT_THROW(ReadTensorFile(dir / "junk.pt"), std::runtime_error);
}

}  // namespace
}  // namespace facet
