#include "core/model/model_file.h"
#include "core/model/state_dict.h"
#include "core/train/checkpoint.h"
#include "core/util/file_util.h"
#include "tests/test_util.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <filesystem>
#include <fstream>

namespace facet {
namespace {

namespace fs = std::filesystem;

Batch RandomBatch(int64_t n) {
  return Batch{torch::randn({n, 3, 32, 32}), torch::rand({n}), torch::randint(2, {n}), torch::randint(5, {n})};
}

TrainingConfig Config(const std::string& checkpoint_dir, int epochs) {
  TrainingConfig c;
  c.data.data_dir = "(in memory)";
  c.arch = "resnet18";
  c.base_width = 8;
  c.image_size = 32;
  c.batch_size = 16;
  c.frozen = {1, 1e-2, 0};
  c.unfrozen = {epochs - 1, 3e-3, 3e-4};
  c.device = "cpu";
  c.checkpoint_dir = checkpoint_dir;
  return c;
}

TEST(Checkpoint, KeepsTheLastTwoAndListsNewestFirst) {
  testing::TempDir dir;
  torch::manual_seed(1);
  testing::TensorBatchSource train(RandomBatch(32), 16, true), val(RandomBatch(16), 16, false);
  Trainer trainer(Config(dir.path(), 4), train, val);
  trainer.Run();
  const auto paths = ListCheckpoints(dir.path());
  ASSERT_EQ(paths.size(), 2u);
  EXPECT_EQ(fs::path(paths[0]).filename(), "epoch-0004.ckpt");
  EXPECT_EQ(fs::path(paths[1]).filename(), "epoch-0003.ckpt");
  for (const auto& entry : fs::directory_iterator(dir.path())) {
    EXPECT_EQ(entry.path().string().find(".tmp"), std::string::npos) << "temporary file left: " << entry.path();
  }
}

TEST(Checkpoint, ACorruptNewestCheckpointFallsBackToThePreviousOne) {
  testing::TempDir dir;
  torch::manual_seed(1);
  testing::TensorBatchSource train(RandomBatch(32), 16, true), val(RandomBatch(16), 16, false);
  Trainer(Config(dir.path(), 3), train, val).Run();  // checkpoints of epochs 2 and 3
  // Truncate the newest (epoch 3): a crash mid-write without atomic rename would leave this.
  const std::string newest = CheckpointPath(dir.path(), 3);
  const auto bytes = ReadFileBytes(newest);
  std::ofstream(newest, std::ios::binary | std::ios::trunc).write(bytes.data(), bytes.size() / 2);

  Trainer trainer(Config(dir.path(), 3), train, val);
  int epochs_run = 0;
  TrainerCallbacks callbacks;
  callbacks.on_epoch = [&](const EpochMetrics&) { ++epochs_run; };
  const TrainResult result = trainer.Run(callbacks);
  EXPECT_EQ(result.resumed_from_epoch, 2);
  EXPECT_EQ(epochs_run, 1);
  EXPECT_EQ(result.history.size(), 3u);
}

TEST(Checkpoint, AFlippedBitInTheNewestCheckpointIsCaughtByItsChecksum) {
  testing::TempDir dir;
  torch::manual_seed(1);
  testing::TensorBatchSource train(RandomBatch(32), 16, true), val(RandomBatch(16), 16, false);
  Trainer(Config(dir.path(), 3), train, val).Run();  // checkpoints of epochs 2 and 3
  // Silent corruption (a bad sector, a bit flip in memory on the way to disk) inside a tensor's bytes: only the
  // checksum can tell, since the archive itself still parses.
  const std::string newest = CheckpointPath(dir.path(), 3);
  auto bytes = ReadFileBytes(newest);
  bytes[bytes.size() * 2 / 3] ^= 0x10;
  std::ofstream(newest, std::ios::binary | std::ios::trunc).write(bytes.data(), bytes.size());

  MultiTaskNet model(ResNetOptions{Arch::kResNet18, 8});
  auto loss = MakeMultiTaskLoss({});
  torch::optim::AdamW optimizer(model->parameters());
  try {
    LoadCheckpoint(newest, model, *loss, optimizer);
    FAIL() << "a corrupt checkpoint loaded";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("CRC-32"), std::string::npos) << e.what();
  }
  Trainer trainer(Config(dir.path(), 3), train, val);
  EXPECT_EQ(trainer.Run().resumed_from_epoch, 2);
}

bool SameWeights(MultiTaskNet& a, MultiTaskNet& b) {
  const TensorMap other = StateDict(*b);
  for (const auto& [k, v] : StateDict(*a)) {
    if (!torch::equal(v, other.at(k))) return false;
  }
  return true;
}

TEST(Checkpoint, HoldsTheWeightAverageAndOneWithoutItRestartsAveragingFromTheResumedWeights) {
  testing::TempDir with_average, without_average;
  testing::TensorBatchSource train(RandomBatch(32), 16, true), val(RandomBatch(16), 16, false);
  TrainingConfig config = Config(with_average.path(), 2);
  config.ema_decay = 0.9;
  torch::manual_seed(1);
  Trainer first(config, train, val);
  first.Run();
  ASSERT_FALSE(SameWeights(first.served_model(), first.model()));
  Trainer resumed(config, train, val);  // every epoch is done: Run only reads the checkpoint
  EXPECT_EQ(resumed.Run().resumed_from_epoch, 2);
  EXPECT_TRUE(SameWeights(resumed.served_model(), first.served_model())) << "the average came back";

  torch::manual_seed(1);
  Trainer(Config(without_average.path(), 2), train, val).Run();
  config.checkpoint_dir = without_average.path();
  Trainer upgraded(config, train, val);
  EXPECT_EQ(upgraded.Run().resumed_from_epoch, 2);
  EXPECT_TRUE(SameWeights(upgraded.served_model(), upgraded.model())) << "not the untrained initial weights";
}

TEST(Checkpoint, LoadingAFileThatIsNotACheckpointNamesIt) {
  testing::TempDir dir;
  std::ofstream(dir / "epoch-0001.ckpt") << "garbage";
  MultiTaskNet model(ResNetOptions{Arch::kResNet18, 8});
  auto loss = MakeMultiTaskLoss({});
  torch::optim::AdamW optimizer(model->parameters());
  try {
    LoadCheckpoint(dir / "epoch-0001.ckpt", model, *loss, optimizer);
    FAIL();
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("epoch-0001.ckpt"), std::string::npos) << e.what();
  }
}

TEST(ExportedModel, RoundTripsWithMetadataAndRefusesOtherFiles) {
  testing::TempDir dir;
  MultiTaskNet model(ResNetOptions{Arch::kResNet34, 8});
  auto loss = MakeMultiTaskLoss({});
  ExportModel(dir / "m.pt", model, loss->LogVariances(), 56);
  ExportedModelInfo info;
  MultiTaskNet loaded = LoadExportedModel(dir / "m.pt", torch::kCPU, &info);
  EXPECT_EQ(info.arch, Arch::kResNet34);
  EXPECT_EQ(info.base_width, 8);
  EXPECT_EQ(info.image_size, 56);
  model->eval();
  const auto x = torch::randn({2, 3, 56, 56});
  EXPECT_TRUE(torch::allclose(model->forward(x).ethnicity, loaded->forward(x).ethnicity));

  WriteTensorFile(dir / "plain.pt", {{"encoder.conv1.weight", torch::zeros({1})}});
  try {
    LoadExportedModel(dir / "plain.pt", torch::kCPU);
    FAIL();
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("not a facet model export"), std::string::npos) << e.what();
  }
  EXPECT_THROW(LoadExportedModel(dir / "missing.pt", torch::kCPU), std::runtime_error);
}

TEST(WriteFileAtomically, ReplacesWholeFilesAndCreatesFolders) {
  testing::TempDir dir;
  const std::string path = dir / "a/b/file.bin";
  WriteFileAtomically(path, "first version, longer");
  WriteFileAtomically(path, "second");
  const auto bytes = ReadFileBytes(path);
  EXPECT_EQ(std::string(bytes.begin(), bytes.end()), "second");
}

}  // namespace
}  // namespace facet
