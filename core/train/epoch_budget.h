// Sizes the last training stage to a wall-clock budget: as many epochs as fit, re-planned as the run measures its
// own speed. No LibTorch.
// Pure functions, thread-safe, throw nothing.
#pragma once

#include <cstdint>

namespace facet {

// The run's last epoch (1-based, counted over both stages) when `epoch` is about to run (or has just started),
// `elapsed_before_s` seconds of the budget went before it, and one epoch takes about `epoch_s`: every epoch that
// fits in what is left, and always `epoch` itself, so that a plan never cuts an epoch short.
int PlanLastEpoch(double budget_s, double elapsed_before_s, double epoch_s, int epoch);

// The step (batches done) of a budgeted stage's first epoch at which its own pace is measured and the stage is
// planned; until then the learning rate stays at the one-cycle schedule's start, whatever the length. A fifth of
// the epoch: the first steps run slow (allocator and page cache warming), and the schedule's first fifth of an
// epoch barely leaves its start.
int64_t FirstPlanStep(int64_t steps_per_epoch);

}  // namespace facet
