// Validation metrics over a whole data set, overall and by group (ethnicity, gender, age decade).
// Pure functions over tensors, thread-safe; they throw nothing of their own.
#pragma once

#include "core/data/batch_source.h"
#include "core/labels.h"
#include "core/loss/multitask_loss.h"
#include "core/model/multitask_net.h"

#include <c10/core/Device.h>

#include <array>
#include <cstdint>
#include <string>
#include <vector>

namespace facet {

// The three task metrics over one slice of the data, e.g. dimension "ethnicity", group "black".
struct GroupMetrics {
  std::string dimension;  // "ethnicity" | "gender" | "age_decade"
  std::string group;      // a class name, or a decade such as "20-29" (the last is "80+")
  int64_t n = 0;
  double age_mae_years = 0.0;
  double gender_accuracy = 0.0;
  double ethnicity_accuracy = 0.0;
};

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
  double gender_ece = 0.0;     // expected calibration error of the softmax (15 bins), before any calibration
  double ethnicity_ece = 0.0;
  std::vector<GroupMetrics> groups;  // every non-empty group of every dimension, in a fixed order
};

// A model's raw outputs over a data set beside its labels, all on the CPU.
struct LabelledOutputs {
  TaskOutputs outputs;  // age (N), gender logits (N,2), ethnicity logits (N,5)
  torch::Tensor age;    // (N) scaled log-age targets
  torch::Tensor gender;
  torch::Tensor ethnicity;
  int64_t size() const { return age.defined() ? age.size(0) : 0; }
};

// Runs the model in eval mode over every batch of `source` (one epoch, seed 0). Restores its training mode.
LabelledOutputs CollectOutputs(MultiTaskNet& model, BatchSource& source, c10::Device device);

// Whole-set and per-group metrics of collected outputs; `loss` gives the combined loss.
EvalMetrics ComputeMetrics(const LabelledOutputs& data, const MultiTaskLossImpl& loss);

// CollectOutputs, then ComputeMetrics.
EvalMetrics Evaluate(MultiTaskNet& model, const MultiTaskLossImpl& loss, BatchSource& source, c10::Device device);

// "0-9", "10-19", ..., "80+": the age_decade group of an age in years.
std::string AgeDecade(int age_years);

}  // namespace facet
