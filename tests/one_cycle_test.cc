#include "core/train/one_cycle.h"
#include "tests/test_util.h"

#include <gtest/gtest.h>

#include <sstream>

namespace facet {
namespace {

TEST(OneCycleSchedule, StartsPeaksAndEndsWhereFastaiDoes) {
  const OneCycleSchedule s(OneCycleOptions{100});
  EXPECT_NEAR(s.LrFactor(0), 1.0 / 25, 1e-12);
  EXPECT_NEAR(s.LrFactor(29), 1.0, 1e-12);  // warm-up ends at pct_start * total - 1
  EXPECT_NEAR(s.LrFactor(99), 1.0 / 25 / 1e4, 1e-12);
  EXPECT_NEAR(s.Momentum(0), 0.95, 1e-12);
  EXPECT_NEAR(s.Momentum(29), 0.85, 1e-12);
  EXPECT_NEAR(s.Momentum(99), 0.95, 1e-12);
  for (int64_t i = 1; i <= 29; ++i) EXPECT_GT(s.LrFactor(i), s.LrFactor(i - 1));
  for (int64_t i = 30; i < 100; ++i) EXPECT_LT(s.LrFactor(i), s.LrFactor(i - 1));
}

TEST(OneCycleSchedule, RejectsNonsense) {
  EXPECT_THROW(OneCycleSchedule(OneCycleOptions{0}), std::invalid_argument);
  OneCycleOptions o{10};
  o.pct_start = 1.5;
  EXPECT_THROW(OneCycleSchedule{o}, std::invalid_argument);
}

// The schedule must equal PyTorch's OneCycleLR (what the reference uses), computed by /usr/bin/python3.
TEST(OneCycleSchedule, MatchesTorchOneCycleLR) {
  if (!testing::PythonHasTorch()) GTEST_SKIP() << "/usr/bin/python3 lacks torch: parity with OneCycleLR skipped";
  const char* script = R"(
import sys, torch
total, max_lr = int(sys.argv[1]), 3e-3
p = torch.nn.Parameter(torch.zeros(1))
opt = torch.optim.AdamW([p], lr=max_lr, betas=(0.9, 0.99))
s = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=max_lr, total_steps=total, pct_start=0.3, div_factor=25.0,
    final_div_factor=1e4, anneal_strategy='cos', cycle_momentum=True, base_momentum=0.85, max_momentum=0.95)
for step in range(total):
    g = opt.param_groups[0]
    print(step, repr(g['lr']), repr(g['betas'][0]))
    opt.step(); s.step()
)";
  for (int total : {7, 100, 333}) {
    std::string output;
    ASSERT_EQ(testing::RunPython(script, {std::to_string(total)}, &output), 0) << output;
    const OneCycleSchedule schedule(OneCycleOptions{total});
    std::istringstream lines(output);
    int64_t step;
    double lr, beta1;
    int rows = 0;
    while (lines >> step >> lr >> beta1) {
      EXPECT_NEAR(schedule.LrFactor(step) * 3e-3, lr, 1e-12) << "total " << total << " step " << step;
      EXPECT_NEAR(schedule.Momentum(step), beta1, 1e-12) << "total " << total << " step " << step;
      ++rows;
    }
    EXPECT_EQ(rows, total) << output;
  }
}

}  // namespace
}  // namespace facet
