// Learning-rate range test (Smith 2015; fastai's lr_find): an exponential sweep of the learning rate over a few
// hundred steps while the loss is recorded. The model's weights are restored afterwards.
// Runs on the calling thread; throws std::invalid_argument on a range it cannot sweep.
#pragma once

#include "core/train/trainer.h"

#include <vector>

namespace facet {

struct LrFinderOptions {
  double start_lr = 1e-7;
  double end_lr = 10.0;
  int num_steps = 100;
  double smoothing = 0.98;     // exponential moving average of the loss (bias-corrected)
  double divergence = 4.0;     // stop once the smoothed loss exceeds this multiple of its minimum
};

struct LrFinderResult {
  std::vector<double> learning_rates;
  std::vector<double> smoothed_losses;  // unweighted sum of the task losses, smoothed
  double suggested_lr = 0.0;   // where the smoothed loss falls fastest (steepest negative slope in log-lr)
};

// Sweeps with the trainer's model, loss and training data, in the stage-1 configuration (frozen encoder) when
// `frozen` is set. Uses its own optimizer; leaves the trainer's model and loss exactly as they were.
LrFinderResult FindLearningRate(Trainer& trainer, BatchSource& train, const LrFinderOptions& options, bool frozen);

}  // namespace facet
