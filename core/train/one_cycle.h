// fastai's fit_one_cycle schedule, numerically equal to torch.optim.lr_scheduler.OneCycleLR
// (anneal_strategy='cos', three_phase=False, cycle_momentum=True). No LibTorch.
// Immutable once built, so thread-safe; the constructor throws std::invalid_argument for a schedule of no steps or
// shares outside (0, 1).
#pragma once

#include <cstdint>

namespace facet {

struct OneCycleOptions {
  int64_t total_steps = 1;
  double pct_start = 0.3;           // share of steps spent warming up
  double div_factor = 25.0;         // initial lr = max_lr / div_factor
  double final_div_factor = 1e4;    // final lr = initial lr / final_div_factor
  double max_momentum = 0.95;       // beta1 at the start and the end
  double base_momentum = 0.85;      // beta1 at the peak learning rate
};

class OneCycleSchedule {
 public:
  explicit OneCycleSchedule(const OneCycleOptions& options);  // std::invalid_argument on nonsense options

  // Learning rate at optimizer step `step` (0-based) as a fraction of max_lr, so one schedule serves param groups
  // with different max learning rates.
  double LrFactor(int64_t step) const;
  double Momentum(int64_t step) const;
  int64_t total_steps() const { return options_.total_steps; }

 private:
  double Interpolate(int64_t step, double warm_start, double peak, double end) const;
  OneCycleOptions options_;
};

}  // namespace facet
