#include "core/train/one_cycle.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>

namespace facet {
namespace {

double CosineAnneal(double start, double end, double pct) { return end + (start - end) / 2.0 * (std::cos(M_PI * pct) + 1); }

}  // namespace

OneCycleSchedule::OneCycleSchedule(const OneCycleOptions& options) : options_(options) {
  if (options.total_steps < 1) throw std::invalid_argument("one-cycle total_steps must be >= 1");
  if (!(options.pct_start > 0.0 && options.pct_start < 1.0)) {
    throw std::invalid_argument("one-cycle pct_start must be in (0, 1), got " + std::to_string(options.pct_start));
  }
  if (!(options.div_factor > 0.0) || !(options.final_div_factor > 0.0)) {
    throw std::invalid_argument("one-cycle div factors must be > 0");
  }
}

// Two phases exactly as PyTorch computes them: the warm-up ends at step pct_start*total - 1, the annealing at
// total - 1; each interpolates by cosine from its start value to its end value.
double OneCycleSchedule::Interpolate(int64_t step, double warm_start, double peak, double end) const {
  const double warm_end_step = options_.pct_start * static_cast<double>(options_.total_steps) - 1.0;
  const double last_step = static_cast<double>(options_.total_steps) - 1.0;
  const double s = static_cast<double>(std::clamp<int64_t>(step, 0, options_.total_steps - 1));
  if (s <= warm_end_step) return CosineAnneal(warm_start, peak, warm_end_step > 0 ? s / warm_end_step : 1.0);
  return CosineAnneal(peak, end, (s - warm_end_step) / (last_step - warm_end_step));
}

double OneCycleSchedule::LrFactor(int64_t step) const {
  const double initial = 1.0 / options_.div_factor;
  return Interpolate(step, initial, 1.0, initial / options_.final_div_factor);
}

double OneCycleSchedule::Momentum(int64_t step) const {
  return Interpolate(step, options_.max_momentum, options_.base_momentum, options_.max_momentum);
}

}  // namespace facet
