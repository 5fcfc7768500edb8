// Everything a training run takes. Plain data, no LibTorch or OpenCV: the server maps its API onto it, and the CLI
// builds its flags from TrainingFields().
#pragma once

#include "core/data/data_config.h"
#include "core/loss/loss_config.h"

#include <cstdint>
#include <string>
#include <vector>

namespace facet {

struct StageConfig {
  int epochs = 0;
  double lr_max = 0.0;  // learning rate of the heads (and of every group when there is one group)
  double lr_min = 0.0;  // stage 2 only: learning rate of the stem; groups in between are spread geometrically
};

struct TrainingConfig {
  DataConfig data;  // what it reads, how it splits and augments it

  // Model.
  std::string arch = "resnet34";
  int base_width = 64;         // 64 is the standard ResNet; smaller makes a tiny model for tests
  int image_size = 64;
  std::string pretrained_encoder;  // optional torchvision state-dict file (torch.save(dict(sd)))

  // Optimisation: stage 1 trains heads and encoder BatchNorm with the encoder frozen; stage 2 unfreezes it.
  int batch_size = 64;
  StageConfig frozen{/*epochs=*/2, /*lr_max=*/3e-3, /*lr_min=*/0.0};
  StageConfig unfrozen{/*epochs=*/3, /*lr_max=*/1e-3, /*lr_min=*/1e-4};
  // Above 0: a wall-clock budget for the whole run, in seconds. The frozen stage keeps its epochs; the unfrozen stage
  // runs as many as fit (at least one), instead of unfrozen.epochs. Its length is planned from its first epoch's
  // pace and re-planned at the start of every later epoch from the one before, so a run that speeds up or slows
  // down still ends near the budget, at most one epoch over; its one-cycle schedule stretches or shrinks to match.
  double time_budget_seconds = 0.0;
  double weight_decay = 1e-2;
  LossConfig loss;
  // The learned log-variances' learning rate as a multiple of the heads'. Adam moves a parameter about one learning
  // rate per step, and the age log-variance's optimum lies near -5 (its loss is small): at 1x it gets there only
  // after tens of epochs, weighting age too little all the while.
  double log_variance_lr_scale = 1.0;
  // Above 0: validation, calibration and the exported model use an exponential moving average of the weights,
  // updated after every step with this decay (see WeightAverage). 0: the weights as trained.
  double ema_decay = 0.0;
  // Above 0: mixup (see core/train/mixup.h) on every training batch, its blend λ ~ Beta(mixup_alpha, mixup_alpha).
  // 0: off. Small values (0.1-0.4) mostly blend a little; 1 blends uniformly.
  double mixup_alpha = 0.0;
  uint64_t seed = 42;

  // Execution.
  std::string device = "auto";  // cpu | cuda | cuda:N | auto
  int threads = 0;              // LibTorch intra-op threads; 0 = all cores
  // fp32, or bf16: forward pass and loss under bfloat16 autocast (about 1.5x faster on CPUs with AVX-512 BF16
  // and on recent GPUs; results differ from fp32 at bfloat16's precision). Validation always runs in fp32.
  std::string precision = "fp32";
  bool channels_last = false;  // NHWC memory format for the convolutions: faster on GPUs (tensor cores), not on CPUs
  std::string checkpoint_dir;   // when set: a checkpoint after every epoch, and resume from the latest there
  // Data-parallel processes (see core/distributed): batch_size stays the global batch, each process takes
  // batch_size / world_size of it, so schedules and results match a one-process run.
  int world_size = 1;
};

// Every numeric setting of a run, DataFields() included: API name, facetctl flag, help, accepted range, and its
// default as TrainingConfig{} holds it. Fields with an empty flag are the core's own (not in the API).
const std::vector<ConfigField<TrainingConfig>>& TrainingFields();

// Throws std::invalid_argument whose message starts with the offending field's name ("batch_size: must be ...").
// Checks values only (every range in TrainingFields(), and the rules between fields); whether folders exist is for
// whoever opens them.
void ValidateTrainingConfig(const TrainingConfig& config);

}  // namespace facet
