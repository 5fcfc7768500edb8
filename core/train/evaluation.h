// Validation metrics over a whole data set.
#pragma once

#include "core/labels.h"
#include "core/loss/multitask_loss.h"
#include "core/model/multitask_net.h"
#include "core/train/batch_source.h"

#include <c10/core/Device.h>

#include <array>
#include <cstdint>

namespace facet {

struct EvalMetrics {
  int64_t n = 0;
  double loss = 0.0;                              // combined, with the loss module's current weights
  std::array<double, kNumTasks> task_losses{};    // whole-set means, kTaskNames order
  double age_rmse = 0.0;                          // RMSE of the scaled log-age (the reference's "rmse")
  double age_mae_years = 0.0;
  double gender_accuracy = 0.0;
  double ethnicity_accuracy = 0.0;
  std::array<double, kNumGenders> gender_class_accuracy{};        // recall per class; NaN for an absent class
  std::array<double, kNumEthnicities> ethnicity_class_accuracy{};
};

// Runs the model in eval mode over every batch of `source` (one epoch, seed 0) and computes whole-set metrics.
// Restores the model's training mode afterwards.
EvalMetrics Evaluate(MultiTaskNet& model, const MultiTaskLossImpl& loss, BatchSource& source, c10::Device device);

}  // namespace facet
