#include "core/data/synthetic.h"
#include "core/model/model_file.h"
#include "core/model/state_dict.h"
#include "core/train/checkpoint.h"
#include "core/train/lr_finder.h"
#include "core/train/run_data.h"
#include "core/train/trainer.h"
#include "tests/test_util.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <map>
#include <filesystem>

namespace facet {
namespace {

namespace fs = std::filesystem;

// One synthetic set for the whole suite: writing it is the slow part of set-up.
class TrainerTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new testing::TempDir();
    WriteSyntheticDataset(dir_->path(), {/*count=*/800, /*image_size=*/64, /*seed=*/3});
  }
  static void TearDownTestSuite() {
    delete dir_;
    dir_ = nullptr;
  }
  static TrainingConfig TinyConfig() {
    TrainingConfig c;
    c.data.data_dir = dir_->path();
    c.arch = "resnet18";
    c.base_width = 16;
    c.image_size = 48;
    c.batch_size = 32;
    c.frozen = {1, 1e-2, 0};
    c.unfrozen = {4, 3e-3, 3e-4};
    c.device = "cpu";
    c.threads = 2;
    c.data.loader_workers = 2;
    return c;
  }
  static testing::TempDir* dir_;
};
testing::TempDir* TrainerTest::dir_ = nullptr;

TEST_F(TrainerTest, LearnsAllThreeTasksOnSyntheticFaces) {
  const TrainingConfig config = TinyConfig();
  TrainingData data = OpenTrainingData(config);
  Trainer trainer(config, *data.train, *data.validation);
  int steps = 0;
  TrainerCallbacks callbacks;
  callbacks.on_step = [&](const StepProgress& p) {
    ++steps;
    EXPECT_EQ(p.global_step, steps);
    EXPECT_EQ(p.total_steps, 5 * data.train->batches_per_epoch());
  };
  const TrainResult result = trainer.Run(callbacks);
  ASSERT_EQ(result.history.size(), 5u);
  EXPECT_EQ(steps, 5 * data.train->batches_per_epoch());
  EXPECT_FALSE(result.cancelled);
  EXPECT_GE(result.best_epoch, 1);

  // Constant-prediction baselines a broken model cannot beat: the spread of the validation targets, the majority
  // classes' shares.
  double sum = 0, sum_sq = 0;
  int counts_gender[2] = {0, 0}, counts_ethnicity[5] = {0, 0, 0, 0, 0};
  data.validation->StartEpoch(0);
  int64_t n = 0;
  while (auto b = data.validation->Next()) {
    sum += b->age.sum().item<double>();
    sum_sq += b->age.pow(2).sum().item<double>();
    for (int64_t i = 0; i < b->size(); ++i) {
      ++counts_gender[b->gender[i].item<int64_t>()];
      ++counts_ethnicity[b->ethnicity[i].item<int64_t>()];
    }
    n += b->size();
  }
  const double target_std = std::sqrt(sum_sq / n - (sum / n) * (sum / n));
  const double majority_gender = *std::max_element(counts_gender, counts_gender + 2) / double(n);
  const double majority_ethnicity = *std::max_element(counts_ethnicity, counts_ethnicity + 5) / double(n);

  const EpochMetrics& first = result.history.front();
  const EpochMetrics& last = result.history.back();
  std::printf("final: gender %.3f (majority %.3f), ethnicity %.3f (majority %.3f), age rmse %.4f (target std %.4f), "
              "age mae %.2f y (first epoch %.2f y)\n",
              last.validation.gender_accuracy, majority_gender, last.validation.ethnicity_accuracy, majority_ethnicity,
              last.validation.age_rmse, target_std, last.validation.age_mae_years, first.validation.age_mae_years);
  EXPECT_GT(last.validation.gender_accuracy, std::max(0.8, majority_gender + 0.25));
  EXPECT_GT(last.validation.ethnicity_accuracy, std::max(0.55, majority_ethnicity + 0.3));
  EXPECT_LT(last.validation.age_rmse, 0.75 * target_std);
  EXPECT_LT(last.validation.age_mae_years, first.validation.age_mae_years);
  EXPECT_LT(last.train_loss, first.train_loss);
  EXPECT_EQ(last.stage, Stage::kUnfrozen);
  EXPECT_GT(last.images_per_s, 0);
  for (double a : last.validation.ethnicity_class_accuracy) EXPECT_TRUE(a >= 0 && a <= 1);
  // The log-variances are learned: they moved away from 0.
  EXPECT_GT(std::abs(last.log_variances[0]) + std::abs(last.log_variances[1]) + std::abs(last.log_variances[2]), 1e-3);
}

TEST_F(TrainerTest, FrozenStageLeavesEncoderConvolutionsUntouched) {
  TrainingConfig config = TinyConfig();
  config.data.max_images = 200;
  config.unfrozen.epochs = 0;
  TrainingData data = OpenTrainingData(config);
  Trainer trainer(config, *data.train, *data.validation);
  TensorMap before;
  for (const auto& [k, v] : StateDict(*trainer.model())) before[k] = v.clone();
  trainer.Run();
  int convs = 0, norms_changed = 0;
  for (const auto& [k, v] : StateDict(*trainer.model())) {
    const bool conv = k.rfind("encoder.", 0) == 0 && v.dim() == 4;
    if (conv) {
      ++convs;
      EXPECT_TRUE(torch::equal(v, before.at(k))) << k << " changed in the frozen stage";
    }
    if (k.rfind("encoder.", 0) == 0 && k.find("bn1.weight") != std::string::npos && !torch::equal(v, before.at(k))) {
      ++norms_changed;
    }
  }
  EXPECT_EQ(convs, 20);  // resnet18: stem + 16 block convolutions + 3 downsample convolutions
  EXPECT_GT(norms_changed, 0) << "encoder BatchNorm layers train in the frozen stage";
  EXPECT_FALSE(torch::equal(StateDict(*trainer.model()).at("age_head.4.weight"), before.at("age_head.4.weight")));
}

TEST_F(TrainerTest, CancelStopsBetweenSteps) {
  TrainingConfig config = TinyConfig();
  config.data.max_images = 200;
  TrainingData data = OpenTrainingData(config);
  Trainer trainer(config, *data.train, *data.validation);
  int steps = 0;
  TrainerCallbacks callbacks;
  callbacks.on_step = [&](const StepProgress&) { ++steps; };
  callbacks.should_stop = [&] { return steps >= 2; };
  const TrainResult result = trainer.Run(callbacks);
  EXPECT_TRUE(result.cancelled);
  EXPECT_EQ(steps, 2);
  EXPECT_TRUE(result.history.empty());
}

// A validation source that counts the passes made over it.
class CountingSource final : public BatchSource {
 public:
  explicit CountingSource(BatchSource& inner) : inner_(inner) {}
  int64_t num_samples() const override { return inner_.num_samples(); }
  int64_t batches_per_epoch() const override { return inner_.batches_per_epoch(); }
  using BatchSource::StartEpoch;
  void StartEpoch(uint64_t seed, int64_t first_batch) override {
    ++passes;
    inner_.StartEpoch(seed, first_batch);
  }
  std::optional<Batch> Next() override { return inner_.Next(); }
  int passes = 0;

 private:
  BatchSource& inner_;
};

TEST_F(TrainerTest, CalibrateReusesTheLastValidationPassUntilTheWeightsChange) {
  TrainingConfig config = TinyConfig();
  config.data.max_images = 160;
  config.frozen.epochs = 0;
  config.unfrozen.epochs = 1;
  TrainingData data = OpenTrainingData(config);
  CountingSource validation(*data.validation);
  Trainer trainer(config, *data.train, validation);
  trainer.Run();
  ASSERT_EQ(validation.passes, 1);
  const CalibrationReport reused = trainer.Calibrate();
  EXPECT_EQ(validation.passes, 1) << "the epoch's validation outputs are those of the current weights";
  {
    torch::NoGradGuard no_grad;
    trainer.model()->parameters()[0].mul_(0.5);
  }
  const CalibrationReport fresh = trainer.Calibrate();
  EXPECT_EQ(validation.passes, 2) << "changed weights need a new pass";
  EXPECT_EQ(reused.n, fresh.n);
}

// The reference for the resume tests: the served weights and history of `config` trained start to finish.
std::pair<TensorMap, std::vector<EpochMetrics>> UninterruptedRun(TrainingConfig config) {
  testing::TempDir dir;
  config.checkpoint_dir = dir.path();
  TrainingData data = OpenTrainingData(config);
  Trainer trainer(config, *data.train, *data.validation);
  auto history = trainer.Run().history;
  return {StateDict(*trainer.served_model()), std::move(history)};
}

TEST_F(TrainerTest, ResumeFromACheckpointContinuesExactly) {
  TrainingConfig config = TinyConfig();
  config.data.max_images = 160;
  config.frozen.epochs = 1;
  config.unfrozen.epochs = 2;

  testing::TempDir resumed_dir;
  const auto [straight, straight_history] = UninterruptedRun(config);
  config.checkpoint_dir = resumed_dir.path();
  {  // Stop once epoch 2 (the first of stage 2) is checkpointed.
    TrainingData data = OpenTrainingData(config);
    Trainer trainer(config, *data.train, *data.validation);
    bool epoch2_done = false;
    TrainerCallbacks callbacks;
    callbacks.on_epoch = [&](const EpochMetrics& m) { epoch2_done = m.epoch == 2; };
    callbacks.should_stop = [&] { return epoch2_done; };
    const TrainResult partial = trainer.Run(callbacks);
    ASSERT_TRUE(partial.cancelled);
    ASSERT_EQ(partial.history.size(), 2u);
  }
  TrainingData data = OpenTrainingData(config);
  Trainer trainer(config, *data.train, *data.validation);  // a fresh process would build exactly this
  const TrainResult resumed = trainer.Run();
  EXPECT_EQ(resumed.resumed_from_epoch, 2);
  ASSERT_EQ(resumed.history.size(), 3u);
  EXPECT_DOUBLE_EQ(resumed.history[0].validation.loss, straight_history[0].validation.loss) << "history survives";
  EXPECT_NEAR(resumed.history[2].train_loss, straight_history[2].train_loss, 1e-6);
  for (const auto& [k, v] : StateDict(*trainer.served_model())) {
    EXPECT_LT((v.to(torch::kDouble) - straight.at(k).to(torch::kDouble)).abs().max().item<double>(), 1e-6) << k;
  }
}

// With a weight average too: the average is in the checkpoint and its decay ramp follows the step's position. With
// mixup: its blends come from the generator the checkpoint saves, so the resumed steps blend the same faces.
TEST_F(TrainerTest, SuspendMidEpochCheckpointsThatStepAndResumesExactly) {
  struct Case {
    double ema_decay, mixup_alpha;
  };
  for (const Case c : {Case{0.0, 0.0}, Case{0.9, 0.0}, Case{0.0, 0.4}}) {
    SCOPED_TRACE("ema_decay " + std::to_string(c.ema_decay) + ", mixup_alpha " + std::to_string(c.mixup_alpha));
    TrainingConfig config = TinyConfig();
    config.data.max_images = 160;
    config.frozen.epochs = 1;
    config.unfrozen.epochs = 2;
    config.ema_decay = c.ema_decay;
    config.mixup_alpha = c.mixup_alpha;

    testing::TempDir resumed_dir;
    const auto [straight, straight_history] = UninterruptedRun(config);
    config.checkpoint_dir = resumed_dir.path();
    int64_t steps_per_epoch = 0;
    {  // A shutdown arrives after step 2 of epoch 3 (unfrozen, dropout active).
      TrainingData data = OpenTrainingData(config);
      steps_per_epoch = data.train->batches_per_epoch();
      ASSERT_GT(steps_per_epoch, 3);
      Trainer trainer(config, *data.train, *data.validation);
      bool shutdown = false;
      TrainerCallbacks callbacks;
      callbacks.on_step = [&](const StepProgress& p) { shutdown = p.epoch == 3 && p.step == 2; };
      callbacks.should_suspend = [&] { return shutdown; };
      const TrainResult suspended = trainer.Run(callbacks);
      ASSERT_TRUE(suspended.suspended);
      ASSERT_FALSE(suspended.cancelled);
      ASSERT_EQ(suspended.history.size(), 2u);
    }
    const auto checkpoints = ListCheckpoints(resumed_dir.path());
    ASSERT_FALSE(checkpoints.empty());
    EXPECT_EQ(fs::path(checkpoints[0]).filename(), "epoch-0002.step-000002.ckpt");

    TrainingData data = OpenTrainingData(config);
    Trainer trainer(config, *data.train, *data.validation);
    int64_t first_step_seen = 0;
    TrainerCallbacks callbacks;
    callbacks.on_step = [&](const StepProgress& p) {
      if (first_step_seen == 0) first_step_seen = p.global_step;
    };
    const TrainResult resumed = trainer.Run(callbacks);
    EXPECT_EQ(first_step_seen, 2 * steps_per_epoch + 3) << "the resumed run continues at step 3 of epoch 3";
    ASSERT_EQ(resumed.history.size(), 3u);
    EXPECT_NEAR(resumed.history[2].train_loss, straight_history[2].train_loss, 1e-6) << "the epoch's sums survive";
    EXPECT_NEAR(resumed.history[2].validation.loss, straight_history[2].validation.loss, 1e-6);
    for (const auto& [k, v] : StateDict(*trainer.served_model())) {
      EXPECT_LT((v.to(torch::kDouble) - straight.at(k).to(torch::kDouble)).abs().max().item<double>(), 1e-6) << k;
    }
  }
}

// A budget shorter than any epoch: the frozen stage keeps its epoch, the unfrozen stage gets one, and its one-cycle
// schedule runs whole within it. A second run over its checkpoints trains nothing: the plan ended there.
TEST_F(TrainerTest, ABudgetShorterThanAnEpochTrainsOneUnfrozenEpochAnnealedToItsEnd) {
  TrainingConfig config = TinyConfig();
  config.data.max_images = 160;
  config.frozen.epochs = 1;
  config.unfrozen.epochs = 50;  // a budget replaces it
  config.time_budget_seconds = 1e-3;
  testing::TempDir checkpoints;
  config.checkpoint_dir = checkpoints.path();
  std::vector<StepProgress> steps;
  TrainerCallbacks callbacks;
  callbacks.on_step = [&](const StepProgress& p) { steps.push_back(p); };
  {
    TrainingData data = OpenTrainingData(config);
    const int64_t steps_per_epoch = data.train->batches_per_epoch();
    Trainer trainer(config, *data.train, *data.validation);
    const TrainResult result = trainer.Run(callbacks);
    ASSERT_EQ(result.history.size(), 2u);
    EXPECT_FALSE(result.cancelled);
    ASSERT_EQ(static_cast<int64_t>(steps.size()), 2 * steps_per_epoch);
    const StepProgress& first_unfrozen = steps[steps_per_epoch];
    EXPECT_EQ(first_unfrozen.stage, Stage::kUnfrozen);
    EXPECT_NEAR(first_unfrozen.head_lr, config.unfrozen.lr_max / 25, 1e-12) << "unplanned: the schedule's start";
    EXPECT_NEAR(steps.back().head_lr, config.unfrozen.lr_max / 25 / 1e4, 1e-12) << "annealed to the end";
    EXPECT_EQ(steps.back().total_epochs, 2);
    EXPECT_EQ(steps.back().global_step, steps.back().total_steps);
  }
  steps.clear();
  TrainingData data = OpenTrainingData(config);
  Trainer trainer(config, *data.train, *data.validation);
  const TrainResult again = trainer.Run(callbacks);
  EXPECT_EQ(again.resumed_from_epoch, 2);
  EXPECT_EQ(again.history.size(), 2u);
  EXPECT_TRUE(steps.empty()) << "the checkpoint's plan had ended; a new plan would have trained epoch 3";
}

// A clock the test drives: every training step takes 1 s, and 2 s from epoch 4 on (the machine slows down);
// validation takes none. An epoch is then 4 steps = 4 s, later 8 s, against a budget of 30 s.
TEST_F(TrainerTest, ABudgetPlansFromTheMeasuredPaceAndReplansWhenItChanges) {
  TrainingConfig config = TinyConfig();
  config.data.max_images = 160;
  config.frozen.epochs = 0;
  config.time_budget_seconds = 30;
  TrainingData data = OpenTrainingData(config);
  ASSERT_EQ(data.train->batches_per_epoch(), 4);
  Trainer trainer(config, *data.train, *data.validation);
  double now = 1000;
  std::map<int, int> planned_last_epoch;  // by epoch, as each epoch's last step reports it
  StepProgress last_step;
  TrainerCallbacks callbacks;
  callbacks.clock = [&] { return now; };
  callbacks.on_step = [&](const StepProgress& p) {
    now += p.epoch < 4 ? 1.0 : 2.0;
    planned_last_epoch[p.epoch] = p.total_epochs;
    last_step = p;
  };
  const TrainResult result = trainer.Run(callbacks);

  // Epoch 1 plans after its first step: 4 s an epoch, 30 s hold 7. Epochs 2-4 re-plan from 4 s epochs (at 4, 8 and
  // 12 s in: 7 still fit). Epoch 4 took 8 s, so epoch 5 (20 s in) finds room for itself alone: the run ends at 28 s.
  EXPECT_EQ(planned_last_epoch, (std::map<int, int>{{1, 7}, {2, 7}, {3, 7}, {4, 7}, {5, 5}}));
  ASSERT_EQ(result.history.size(), 5u);
  double total_s = 0;
  for (const auto& m : result.history) total_s += m.seconds;
  EXPECT_DOUBLE_EQ(total_s, 28.0);
  EXPECT_EQ(last_step.global_step, last_step.total_steps);
  EXPECT_NEAR(last_step.head_lr, config.unfrozen.lr_max / 25 / 1e4, 1e-12) << "the schedule ends with the run";
}

TEST_F(TrainerTest, TheWeightAverageIsWhatValidatesCalibratesAndExports) {
  TrainingConfig config = TinyConfig();
  config.data.max_images = 160;
  config.frozen.epochs = 0;
  config.unfrozen.epochs = 2;
  config.ema_decay = 0.9;
  TrainingData data = OpenTrainingData(config);
  Trainer trainer(config, *data.train, *data.validation);
  TensorMap initial;
  for (const auto& [k, v] : StateDict(*trainer.model())) initial[k] = v.clone();
  const TrainResult result = trainer.Run();
  ASSERT_EQ(result.history.size(), 2u);

  // Summed over every floating tensor: how far `weights` are from the trained ones.
  const TensorMap trained = StateDict(*trainer.model());
  const auto distance_to_trained = [&](const TensorMap& weights) {
    double sum = 0.0;
    for (const auto& [k, v] : weights) {
      if (v.is_floating_point()) sum += (v - trained.at(k)).abs().sum().item<double>();
    }
    return sum;
  };
  const double averaged_gap = distance_to_trained(StateDict(*trainer.served_model()));
  EXPECT_GT(averaged_gap, 0.0) << "the average lags the trained weights";
  EXPECT_LT(averaged_gap, 0.5 * distance_to_trained(initial)) << "but follows them away from the initial ones";

  const EvalMetrics averaged = Evaluate(trainer.served_model(), trainer.loss(), *data.validation, trainer.device());
  const EvalMetrics as_trained = Evaluate(trainer.model(), trainer.loss(), *data.validation, trainer.device());
  EXPECT_NEAR(result.history.back().validation.loss, averaged.loss, 1e-6) << "validation reports the average";
  EXPECT_NE(averaged.loss, as_trained.loss);

  testing::TempDir out;
  trainer.Calibrate();
  trainer.ExportModel(out / "model.pt");
  MultiTaskNet exported = LoadExportedModel(out / "model.pt", torch::kCPU);
  const TensorMap served = StateDict(*trainer.served_model());
  for (const auto& [k, v] : StateDict(*exported)) {
    EXPECT_TRUE(torch::equal(v, served.at(k))) << k << ": the export is the average";
  }
}

TEST_F(TrainerTest, RejectsBadConfigsNamingTheField) {
  TrainingConfig config = TinyConfig();
  config.batch_size = 0;
  try {
    ValidateTrainingConfig(config);
    FAIL();
  } catch (const std::invalid_argument& e) {
    EXPECT_EQ(std::string(e.what()).rfind("batch_size:", 0), 0u) << e.what();
  }
  config = TinyConfig();
  config.arch = "vgg16";
  EXPECT_THROW(ValidateTrainingConfig(config), std::invalid_argument);
  config = TinyConfig();
  config.unfrozen.lr_min = 1.0;
  EXPECT_THROW(ValidateTrainingConfig(config), std::invalid_argument);
  config = TinyConfig();
  config.data.augment.flip_probability = 2;
  EXPECT_THROW(ValidateTrainingConfig(config), std::invalid_argument);
  config = TinyConfig();
  config.precision = "fp16";
  EXPECT_THROW(ValidateTrainingConfig(config), std::invalid_argument);
  config = TinyConfig();
  config.log_variance_lr_scale = 0;
  EXPECT_THROW(ValidateTrainingConfig(config), std::invalid_argument);
  config = TinyConfig();
  config.time_budget_seconds = std::nan("");
  EXPECT_THROW(ValidateTrainingConfig(config), std::invalid_argument);
  config = TinyConfig();
  config.mixup_alpha = -0.2;
  EXPECT_THROW(ValidateTrainingConfig(config), std::invalid_argument);
  config = TinyConfig();
  config.frozen.epochs = config.unfrozen.epochs = 0;
  EXPECT_THROW(ValidateTrainingConfig(config), std::invalid_argument) << "nothing to train";
  config.time_budget_seconds = 60;
  EXPECT_NO_THROW(ValidateTrainingConfig(config)) << "a budget sets the unfrozen stage's epochs";
}

TEST_F(TrainerTest, Bfloat16AutocastTrainsLikeFloat32WithinItsPrecision) {
  TrainingConfig config = TinyConfig();
  config.data.max_images = 160;
  config.frozen.epochs = 1;
  config.unfrozen.epochs = 1;
  std::map<std::string, std::vector<EpochMetrics>> histories;
  for (const std::string precision : {"fp32", "bf16"}) {
    config.precision = precision;
    TrainingData data = OpenTrainingData(config);
    Trainer trainer(config, *data.train, *data.validation);
    histories[precision] = trainer.Run().history;
  }
  const auto &fp32 = histories["fp32"], &bf16 = histories["bf16"];
  ASSERT_EQ(bf16.size(), 2u);
  for (size_t e = 0; e < 2; ++e) {
    EXPECT_TRUE(std::isfinite(bf16[e].train_loss));
    // bfloat16 keeps 8 bits of mantissa: the same run, not the same digits.
    EXPECT_NEAR(bf16[e].train_loss, fp32[e].train_loss, 0.05 * std::abs(fp32[e].train_loss)) << "epoch " << e + 1;
    EXPECT_NE(bf16[e].train_loss, fp32[e].train_loss) << "autocast had no effect";
  }
}

TEST_F(TrainerTest, TheConfiguredAgeLossIsWhatTrainsAndWhatValidationReports) {
  TrainingConfig config = TinyConfig();
  config.data.max_images = 160;
  config.frozen.epochs = 0;
  config.unfrozen.epochs = 1;
  config.loss.age_loss = AgeLoss::kYearsL1;
  TrainingData data = OpenTrainingData(config);
  Trainer trainer(config, *data.train, *data.validation);
  const auto history = trainer.Run().history;
  ASSERT_EQ(history.size(), 1u);
  const auto& v = history[0].validation;
  // Under l1-years the age task's loss is the age MAE in years / kAgeLossYears; the log-age RMSE stays as it was.
  EXPECT_NEAR(v.task_losses[0], v.age_mae_years / kAgeLossYears, 1e-4 * v.task_losses[0]);
  EXPECT_GT(v.age_rmse, 0.0);
  EXPECT_NE(v.age_rmse, std::sqrt(v.task_losses[0]));
  EXPECT_TRUE(std::isfinite(history[0].train_task_losses[0]));
  EXPECT_GT(history[0].train_task_losses[0], 0.0);
}

TEST_F(TrainerTest, TheLogVarianceLearningRateScaleSpeedsTheLearnedWeights) {
  TrainingConfig config = TinyConfig();
  config.data.max_images = 160;
  config.frozen.epochs = 0;
  config.unfrozen.epochs = 1;
  std::map<double, EpochMetrics> last;
  for (const double scale : {1.0, 10.0}) {
    config.log_variance_lr_scale = scale;
    TrainingData data = OpenTrainingData(config);
    Trainer trainer(config, *data.train, *data.validation);
    last[scale] = trainer.Run().history.back();
  }
  // Adam moves a parameter about one learning rate per step while its gradient keeps its sign, as the age
  // log-variance's does on its way down from 0: ten times the rate, about ten times the distance.
  const double slow = last[1.0].log_variances[0], fast = last[10.0].log_variances[0];
  EXPECT_LT(slow, 0.0);
  EXPECT_GT(std::abs(fast), 5 * std::abs(slow)) << "scale 1: " << slow << ", scale 10: " << fast;
}

TEST_F(TrainerTest, PretrainedEncoderWithWrongKeysIsAClearError) {
  testing::TempDir tmp;
  WriteTensorFile(tmp / "enc.pt", {{"conv1.weight", torch::zeros({3, 3})}});
  TrainingConfig config = TinyConfig();
  config.data.max_images = 100;
  config.pretrained_encoder = tmp / "enc.pt";
  TrainingData data = OpenTrainingData(config);
  try {
    Trainer trainer(config, *data.train, *data.validation);
    FAIL();
  } catch (const std::invalid_argument& e) {
    const std::string m = e.what();
    EXPECT_EQ(m.rfind("pretrained_encoder:", 0), 0u) << m;
    EXPECT_NE(m.find("mis-shaped keys [conv1.weight"), std::string::npos) << m;
  }
}

Batch RandomBatch(int64_t n, int size, bool poison) {
  torch::manual_seed(0);
  auto images = torch::randn({n, 3, size, size});
  if (poison) images[0][0][0][0] = std::numeric_limits<float>::quiet_NaN();
  return Batch{images, torch::rand({n}), torch::randint(2, {n}), torch::randint(5, {n})};
}

TEST_F(TrainerTest, NonFiniteLossStopsTheRunBeforeTheWeightsAreHarmed) {
  TrainingConfig config = TinyConfig();
  testing::TensorBatchSource train(RandomBatch(64, 32, /*poison=*/true), 16, false), val(RandomBatch(16, 32, false), 16, false);
  Trainer trainer(config, train, val);
  try {
    trainer.Run();
    FAIL() << "expected NonFiniteLossError";
  } catch (const NonFiniteLossError& e) {
    EXPECT_NE(std::string(e.what()).find("non-finite loss"), std::string::npos) << e.what();
  }
  for (const auto& p : trainer.model()->parameters()) EXPECT_TRUE(torch::isfinite(p).all().item<bool>());
}

TEST_F(TrainerTest, LrFinderSweepsAndRestoresTheModel) {
  TrainingConfig config = TinyConfig();
  testing::TensorBatchSource train(RandomBatch(64, 32, false), 16, true), val(RandomBatch(16, 32, false), 16, false);
  Trainer trainer(config, train, val);
  TensorMap before;
  for (const auto& [k, v] : StateDict(*trainer.model())) before[k] = v.clone();
  LrFinderOptions options;
  options.num_steps = 30;
  const LrFinderResult r = FindLearningRate(trainer, train, options, /*frozen=*/false);
  ASSERT_GE(r.learning_rates.size(), 3u);
  EXPECT_EQ(r.learning_rates.size(), r.smoothed_losses.size());
  EXPECT_NEAR(r.learning_rates[0], 1e-7, 1e-12);
  EXPECT_TRUE(std::is_sorted(r.learning_rates.begin(), r.learning_rates.end()));
  EXPECT_GE(r.suggested_lr, r.learning_rates.front());
  EXPECT_LE(r.suggested_lr, r.learning_rates.back());
  for (const auto& [k, v] : StateDict(*trainer.model())) EXPECT_TRUE(torch::equal(v, before.at(k))) << k;
}

}  // namespace
}  // namespace facet
