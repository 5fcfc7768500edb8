#include "core/train/epoch_budget.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>

namespace facet {
namespace {

TEST(PlanLastEpoch, RunsEveryEpochThatFitsWhatIsLeft) {
  EXPECT_EQ(PlanLastEpoch(/*budget_s=*/100, /*elapsed_before_s=*/0, /*epoch_s=*/10, /*epoch=*/1), 10);
  EXPECT_EQ(PlanLastEpoch(100, 0, 11, 1), 9) << "a tenth epoch would end past the budget";
  // Epoch 4 starts 35 s in: 65 s hold six more 10 s epochs, 4 to 9.
  EXPECT_EQ(PlanLastEpoch(100, 35, 10, 4), 9);
}

TEST(PlanLastEpoch, NeverCutsTheEpochThatIsAboutToRun) {
  EXPECT_EQ(PlanLastEpoch(100, 95, 10, 7), 7) << "less than an epoch left";
  EXPECT_EQ(PlanLastEpoch(100, 130, 10, 7), 7) << "already over";
  EXPECT_EQ(PlanLastEpoch(100, 0, 0, 3), 3) << "no pace to plan by";
  EXPECT_EQ(PlanLastEpoch(100, 0, std::numeric_limits<double>::quiet_NaN(), 3), 3);
}

TEST(PlanLastEpoch, StaysInRangeForAHugeBudgetOfTinyEpochs) {
  const int last = PlanLastEpoch(30 * 24 * 3600.0, 0, 1e-9, 1);
  EXPECT_GT(last, 1000);
  EXPECT_LT(last, std::numeric_limits<int>::max() / 2);
}

TEST(FirstPlanStep, IsAFifthOfTheEpochAndAtLeastOneStep) {
  EXPECT_EQ(FirstPlanStep(140), 28);
  EXPECT_EQ(FirstPlanStep(4), 1);
  EXPECT_EQ(FirstPlanStep(1), 1);
}

}  // namespace
}  // namespace facet
