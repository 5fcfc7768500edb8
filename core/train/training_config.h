// Everything a training run takes. Plain data, no LibTorch: the server maps its API onto it.
#pragma once

#include "core/data/augment_options.h"
#include "core/loss/multitask_loss.h"

#include <cstdint>
#include <string>

namespace facet {

struct StageConfig {
  int epochs = 0;
  double lr_max = 0.0;  // learning rate of the heads (and of every group when there is one group)
  double lr_min = 0.0;  // stage 2 only: learning rate of the stem; groups in between are spread geometrically
};

struct TrainingConfig {
  // Data. Paths are used as given; the server resolves them inside its data root before they get here.
  std::string data_dir;
  std::string val_dir;         // when set, all of data_dir trains and val_dir validates
  double val_fraction = 0.2;   // otherwise this share of data_dir, chosen by seed, validates
  int max_images = 0;          // seeded subset of data_dir (0: all)
  double ethnicity_balance = 0.0;  // training draws by ethnicity; see LoaderOptions::ethnicity_balance

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
  AugmentOptions augment;
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
  int loader_workers = 2;       // decode/augment threads
  // fp32, or bf16: forward pass and loss under bfloat16 autocast (about 1.5x faster on CPUs with AVX-512 BF16
  // and on recent GPUs; results differ from fp32 at bfloat16's precision). Validation always runs in fp32.
  std::string precision = "fp32";
  bool channels_last = false;  // NHWC memory format for the convolutions: faster on GPUs (tensor cores), not on CPUs
  std::string checkpoint_dir;   // when set: a checkpoint after every epoch, and resume from the latest there
  // Data-parallel processes (see core/distributed): batch_size stays the global batch, each process takes
  // batch_size / world_size of it, so schedules and results match a one-process run.
  int world_size = 1;
};

// Throws std::invalid_argument whose message starts with the offending field's name ("batch_size: must be ...").
// Checks values only; whether folders exist is for whoever opens them.
void ValidateTrainingConfig(const TrainingConfig& config);

}  // namespace facet
