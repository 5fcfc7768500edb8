#include "core/train/training_config.h"

#include "core/model/resnet.h"
#include "core/util/range_check.h"

#include <stdexcept>
#include <string>

namespace facet {
namespace {

constexpr double kMaxTimeBudgetSeconds = 30 * 24 * 3600.0;  // a month: anything longer is a typo

void CheckLearningRate(const std::string& field, double value) { CheckRange(field, value, 1e-9, 10.0); }

}  // namespace

void ValidateTrainingConfig(const TrainingConfig& c) {
  if (c.data_dir.empty()) FailField("data_dir", "is required");
  if (c.val_dir.empty()) CheckRange("val_fraction", c.val_fraction, 0.01, 0.9);
  if (c.max_images < 0) FailField("max_images", "must be >= 0");
  try {
    ParseArch(c.arch);
  } catch (const std::invalid_argument& e) {
    FailField("arch", e.what());
  }
  if (c.base_width < 4 || c.base_width > 256) FailField("base_width", "must be in [4, 256]");
  if (c.image_size < 32 || c.image_size > 512) FailField("image_size", "must be in [32, 512] pixels");
  if (c.batch_size < 2 || c.batch_size > 4096) FailField("batch_size", "must be in [2, 4096] (BatchNorm needs 2)");
  if (c.frozen.epochs < 0 || c.frozen.epochs > 1000) FailField("frozen.epochs", "must be in [0, 1000]");
  if (c.unfrozen.epochs < 0 || c.unfrozen.epochs > 1000) FailField("unfrozen.epochs", "must be in [0, 1000]");
  CheckRange("time_budget_seconds", c.time_budget_seconds, 0.0, kMaxTimeBudgetSeconds);
  const bool trains_unfrozen = c.unfrozen.epochs > 0 || c.time_budget_seconds > 0;
  if (c.frozen.epochs == 0 && !trains_unfrozen) {
    FailField("frozen.epochs", "both stages have 0 epochs: nothing to train");
  }
  if (c.frozen.epochs > 0) CheckLearningRate("frozen.lr_max", c.frozen.lr_max);
  if (trains_unfrozen) {
    CheckLearningRate("unfrozen.lr_max", c.unfrozen.lr_max);
    CheckLearningRate("unfrozen.lr_min", c.unfrozen.lr_min);
    if (c.unfrozen.lr_min > c.unfrozen.lr_max) FailField("unfrozen.lr_min", "must be <= unfrozen.lr_max");
  }
  CheckRange("weight_decay", c.weight_decay, 0.0, 1.0);
  CheckRange("log_variance_lr_scale", c.log_variance_lr_scale, 1e-3, 1e3);
  CheckRange("loss.label_smoothing", c.loss.label_smoothing, 0.0, 0.5);
  CheckProbability("ethnicity_balance", c.ethnicity_balance);
  // Not CheckRange: 1 itself is excluded (an average that never moves).
  if (!(c.ema_decay >= 0.0 && c.ema_decay < 1.0)) {
    FailField("ema_decay", "must be in [0, 1), got " + std::to_string(c.ema_decay));
  }
  CheckRange("mixup_alpha", c.mixup_alpha, 0.0, 10.0);
  if (c.loss.weighting == LossWeighting::kFixed) {
    double sum = 0.0;
    for (int i = 0; i < kNumTasks; ++i) {
      CheckRange(std::string("loss.fixed_weights[") + kTaskNames[i] + "]", c.loss.fixed_weights[i], 0.0, 1e6);
      sum += c.loss.fixed_weights[i];
    }
    if (sum <= 0.0) FailField("loss.fixed_weights", "at least one weight must be > 0");
  }
  ValidateAugmentOptions(c.augment);
  if (c.device != "auto" && c.device != "cpu" && c.device.rfind("cuda", 0) != 0) {
    FailField("device", "must be cpu, cuda, cuda:N or auto, got '" + c.device + "'");
  }
  if (c.threads < 0 || c.threads > 1024) FailField("threads", "must be in [0, 1024] (0 = all cores)");
  if (c.loader_workers < 0 || c.loader_workers > 64) FailField("loader_workers", "must be in [0, 64]");
  if (c.precision != "fp32" && c.precision != "bf16") FailField("precision", "must be fp32 or bf16");
  if (c.world_size < 1 || c.world_size > 1024) FailField("world_size", "must be in [1, 1024]");
  if (c.batch_size % c.world_size != 0) {
    FailField("world_size", "batch_size " + std::to_string(c.batch_size) +
                                " (the global batch) does not split evenly over " + std::to_string(c.world_size) +
                                " processes");
  }
}

}  // namespace facet
