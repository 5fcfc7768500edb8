#include "core/train/epoch_budget.h"

#include <algorithm>
#include <cmath>

namespace facet {

int PlanLastEpoch(double budget_s, double elapsed_before_s, double epoch_s, int epoch) {
  if (!(epoch_s > 0.0)) return epoch;  // no measurable pace: the safe plan is to finish here
  const double fits = std::floor((budget_s - elapsed_before_s) / epoch_s);
  // Bounded well below int's range: a day-long budget of millisecond epochs still fits.
  const double more = std::clamp(fits - 1.0, 0.0, 1e6);
  return epoch + static_cast<int>(more);
}

int64_t FirstPlanStep(int64_t steps_per_epoch) { return std::max<int64_t>(1, steps_per_epoch / 5); }

}  // namespace facet
