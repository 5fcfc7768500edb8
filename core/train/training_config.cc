#include "core/train/training_config.h"

#include "core/model/arch.h"
#include "core/util/range_check.h"

#include <stdexcept>
#include <string>

namespace facet {
namespace {

constexpr double kMaxTimeBudgetSeconds = 30 * 24 * 3600.0;  // a month: anything longer is a typo
constexpr double kMinLearningRate = 1e-9, kMaxLearningRate = 10.0;

bool TrainsUnfrozen(const TrainingConfig& c) { return c.unfrozen.epochs > 0 || c.time_budget_seconds > 0; }

// The settings TrainingConfig holds itself (DataFields() are the data's).
const std::vector<ConfigField<TrainingConfig>>& OwnFields() {
  using Field = ConfigField<TrainingConfig>;
  static const std::vector<Field> fields = {
      {"base_width", "width", "ResNet base width (64 is standard; 16 makes a small fast model)", 4, 256, false, true,
       1.0, FACET_FIELD_ACCESS(base_width), nullptr},
      {"image_size", "size", "input size in pixels", 32, 512, false, true, 1.0, FACET_FIELD_ACCESS(image_size),
       nullptr},
      {"batch_size", "batch", "batch size (the global batch; BatchNorm needs 2)", 2, 4096, false, true, 1.0,
       FACET_FIELD_ACCESS(batch_size), nullptr},
      {"frozen.epochs", "frozen-epochs", "stage 1 epochs (encoder frozen except BatchNorm)", 0, 1000, false, true, 1.0,
       FACET_FIELD_ACCESS(frozen.epochs), nullptr},
      {"frozen.lr_max", "frozen-lr", "stage 1 one-cycle max learning rate", kMinLearningRate, kMaxLearningRate, false,
       false, 1.0, FACET_FIELD_ACCESS(frozen.lr_max), [](const TrainingConfig& c) { return c.frozen.epochs > 0; }},
      {"unfrozen.epochs", "unfrozen-epochs", "stage 2 epochs (everything trains)", 0, 1000, false, true, 1.0,
       FACET_FIELD_ACCESS(unfrozen.epochs), nullptr},
      {"time_budget_seconds", "budget-minutes",
       "train for this long instead: stage 2 runs as many epochs as fit (planned from its measured pace, at most one "
       "epoch over; 0: off, --unfrozen-epochs counts)",
       0.0, kMaxTimeBudgetSeconds, false, false, 60.0, FACET_FIELD_ACCESS(time_budget_seconds), nullptr},
      {"unfrozen.lr_max", "unfrozen-lr-max", "stage 2 learning rate of the heads", kMinLearningRate, kMaxLearningRate,
       false, false, 1.0, FACET_FIELD_ACCESS(unfrozen.lr_max), TrainsUnfrozen},
      {"unfrozen.lr_min", "unfrozen-lr-min", "stage 2 learning rate of the stem", kMinLearningRate, kMaxLearningRate,
       false, false, 1.0, FACET_FIELD_ACCESS(unfrozen.lr_min), TrainsUnfrozen},
      {"weight_decay", "weight-decay", "AdamW decoupled weight decay", 0.0, 1.0, false, false, 1.0,
       FACET_FIELD_ACCESS(weight_decay), nullptr},
      {"log_variance_lr_scale", "log-var-lr-scale",
       "with a learned weighting: the log-variances' learning rate as a multiple of the heads'", 1e-3, 1e3, false,
       false, 1.0, FACET_FIELD_ACCESS(log_variance_lr_scale), nullptr},
      {"label_smoothing", "label-smoothing", "share of each gender/ethnicity target spread over all classes", 0.0, 0.5,
       false, false, 1.0, FACET_FIELD_ACCESS(loss.label_smoothing), nullptr},
      // 1 itself is excluded: an average that never moves.
      {"ema_decay", "ema-decay",
       "validate and export a moving average of the weights with this decay per step (e.g. 0.998); 0 (off) the "
       "weights as trained",
       0.0, 1.0, true, false, 1.0, FACET_FIELD_ACCESS(ema_decay), nullptr},
      {"mixup_alpha", "mixup-alpha",
       "blend each training image with another of its batch, and their labels' losses, by a share drawn from "
       "Beta(X, X) (e.g. 0.2); 0 (off) no blending",
       0.0, 10.0, false, false, 1.0, FACET_FIELD_ACCESS(mixup_alpha), nullptr},
      {"world_size", "world-size", "data-parallel training processes (one per GPU); the --batch is split between them",
       1, 1024, false, true, 1.0, FACET_FIELD_ACCESS(world_size), nullptr},
      {"threads", "", "LibTorch intra-op threads (0: all cores)", 0, 1024, false, true, 1.0,
       FACET_FIELD_ACCESS(threads), nullptr},
  };
  return fields;
}

}  // namespace

const std::vector<ConfigField<TrainingConfig>>& TrainingFields() {
  static const std::vector<ConfigField<TrainingConfig>> fields = [] {
    std::vector<ConfigField<TrainingConfig>> f;
    AppendLifted(f, DataFields(), &TrainingConfig::data);
    f.insert(f.end(), OwnFields().begin(), OwnFields().end());
    return f;
  }();
  return fields;
}

void ValidateTrainingConfig(const TrainingConfig& c) {
  ValidateDataConfig(c.data);
  for (const auto& field : OwnFields()) field.Check(c);
  try {
    ParseArch(c.arch);
  } catch (const std::invalid_argument& e) {
    FailField("arch", e.what());
  }
  if (c.frozen.epochs == 0 && !TrainsUnfrozen(c)) FailField("frozen.epochs", "both stages have 0 epochs: nothing to train");
  if (TrainsUnfrozen(c) && c.unfrozen.lr_min > c.unfrozen.lr_max) FailField("unfrozen.lr_min", "must be <= unfrozen.lr_max");
  if (c.loss.weighting == LossWeighting::kFixed) {
    double sum = 0.0;
    for (int i = 0; i < kNumTasks; ++i) {
      CheckRange(std::string("fixed_weights[") + kTaskNames[i] + "]", c.loss.fixed_weights[i], 0.0, 1e6);
      sum += c.loss.fixed_weights[i];
    }
    if (sum <= 0.0) FailField("fixed_weights", "at least one weight must be > 0");
  }
  if (c.device != "auto" && c.device != "cpu" && c.device.rfind("cuda", 0) != 0) {
    FailField("device", "must be cpu, cuda, cuda:N or auto, got '" + c.device + "'");
  }
  if (c.precision != "fp32" && c.precision != "bf16") FailField("precision", "must be fp32 or bf16");
  if (c.batch_size % c.world_size != 0) {
    FailField("world_size", "batch_size " + std::to_string(c.batch_size) +
                                " (the global batch) does not split evenly over " + std::to_string(c.world_size) +
                                " processes");
  }
}

}  // namespace facet
