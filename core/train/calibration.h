// Fitting a Calibration (core/model/calibration.h) on held-out outputs, and measuring how calibrated they are.
// Pure functions, thread-safe. Fitting throws std::invalid_argument for a coverage outside (0, 1).
#pragma once

#include "core/model/calibration.h"
#include "core/train/evaluation.h"

#include <ATen/core/Tensor.h>

#include <vector>

namespace facet {

// What calibration did, measured on the data it was fitted on.
struct CalibrationReport {
  Calibration calibration;
  int64_t n = 0;
  double gender_ece_before = 0.0, gender_ece_after = 0.0;
  double ethnicity_ece_before = 0.0, ethnicity_ece_after = 0.0;
};

// Expected calibration error of the top-class confidence, with `bins` equal-width bins (the usual 15).
// probabilities: (N,C); labels: (N) int64.
double ExpectedCalibrationError(const at::Tensor& probabilities, const at::Tensor& labels, int bins = 15);

// The temperature T > 0 that minimises the cross-entropy of softmax(logits / T), searched on log T in
// [1/20, 20]. logits: (N,C); labels: (N) int64.
double FitTemperature(const at::Tensor& logits, const at::Tensor& labels);

// The split-conformal quantile of nonconformity scores: the ceil((n+1) coverage)-th smallest, so that a fresh
// exchangeable score falls at or below it with probability >= coverage. Infinity when n is too small for that.
double ConformalQuantile(std::vector<double> scores, double coverage);

// Temperatures for both classifiers and a conformal age interval from a model's outputs on validation data.
CalibrationReport FitCalibration(const LabelledOutputs& validation, double age_coverage = 0.9);

}  // namespace facet
