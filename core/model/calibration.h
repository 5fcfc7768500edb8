// What is fitted on validation data after training and travels inside the exported model, so that served
// probabilities mean what they say and each age comes with an interval. Plain data, no LibTorch.
#pragma once

namespace facet {

struct Calibration {
  // Temperature scaling (Guo et al. 2017): probabilities are softmax(logits / T). 1 leaves them as trained.
  double gender_temperature = 1.0;
  double ethnicity_temperature = 1.0;
  // Split-conformal age interval: [age * e^-w, age * e^w] holds the true age with probability `age_coverage`
  // on data like the validation set. The error of an age estimate grows with the age, hence the log scale.
  double age_coverage = 0.0;  // 0: no interval
  double age_log_halfwidth = 0.0;

  bool has_age_interval() const { return age_coverage > 0.0; }
};

}  // namespace facet
