// The supervision loop of data-parallel jobs against a fake worker group: events relayed, a cancel and a shutdown
// passed on once each, a failed worker ending the job with its description, a group without a result refused.
#include "server/worker_supervision.h"

#include <gtest/gtest.h>

#include <csignal>
#include <deque>
#include <functional>
#include <vector>

namespace facet::server {
namespace {

// Plays a script: each poll hands out the queued events, then `on_poll` may change the world (exit, fail).
class FakeWorkers final : public WorkerProcesses {
 public:
  std::deque<internal::WorkerEvent> events;
  std::vector<int> signals;
  bool killed = false;
  bool exited = false;
  std::optional<std::string> failure;
  int polls = 0;
  std::function<void(FakeWorkers&)> on_poll;  // after each CheckExits

  std::optional<internal::WorkerEvent> NextEvent(std::chrono::milliseconds) override {
    if (events.empty()) return std::nullopt;
    auto e = events.front();
    events.pop_front();
    return e;
  }
  void SignalAll(int signal) override { signals.push_back(signal); }
  void KillAll() override { killed = true; }
  std::optional<std::string> CheckExits() override {
    ++polls;
    if (on_poll) on_poll(*this);
    return failure;
  }
  bool AllExited() const override { return exited; }
};

internal::WorkerEvent Progress(int64_t step) {
  internal::WorkerEvent e;
  e.mutable_progress()->set_global_step(step);
  return e;
}
internal::WorkerEvent Epoch(int epoch) {
  internal::WorkerEvent e;
  e.mutable_epoch()->set_epoch(epoch);
  return e;
}
internal::WorkerEvent Result(int best_epoch) {
  internal::WorkerEvent e;
  e.mutable_result()->set_best_epoch(best_epoch);
  return e;
}

TEST(SuperviseWorkers, RelaysEveryEventAndReturnsRankZerosResult) {
  FakeWorkers workers;
  workers.events = {Progress(1), Progress(2), Epoch(1), Progress(3), Epoch(2)};
  workers.on_poll = [](FakeWorkers& w) {
    if (w.events.empty() && !w.exited) {  // the result arrives as the workers exit
      w.events.push_back(Result(2));
      w.exited = true;
    }
  };
  std::vector<int64_t> steps;
  std::vector<int> epochs;
  SupervisionHooks hooks;
  hooks.on_progress = [&](const v1::Progress& p) { steps.push_back(p.global_step()); };
  hooks.on_epoch = [&](const v1::EpochMetrics& m) { epochs.push_back(m.epoch()); };
  const internal::WorkerResult result = SuperviseWorkers(workers, hooks);
  EXPECT_EQ(result.best_epoch(), 2);
  EXPECT_EQ(steps, (std::vector<int64_t>{1, 2, 3}));
  EXPECT_EQ(epochs, (std::vector<int>{1, 2}));
  EXPECT_TRUE(workers.signals.empty());
  EXPECT_FALSE(workers.killed);
}

TEST(SuperviseWorkers, PassesACancelAndAShutdownOnOnceEach) {
  FakeWorkers workers;
  bool cancel = false, stopping = false;
  workers.on_poll = [&](FakeWorkers& w) {
    if (w.polls == 2) cancel = true;
    if (w.polls == 4) stopping = true;
    if (w.polls == 8) {
      w.events.push_back(Result(1));
      w.exited = true;
    }
  };
  SupervisionHooks hooks;
  hooks.cancel_requested = [&] { return cancel; };
  hooks.stopping = [&] { return stopping; };
  SuperviseWorkers(workers, hooks);
  EXPECT_EQ(workers.signals, (std::vector<int>{SIGUSR1, SIGTERM}));
}

TEST(SuperviseWorkers, AFailedWorkerKillsTheGroupAndNamesTheCause) {
  FakeWorkers workers;
  workers.events = {Progress(1), Epoch(1)};
  workers.on_poll = [](FakeWorkers& w) {
    if (w.polls == 3) w.failure = "rank 1 killed by signal 9";
  };
  int epochs = 0;
  SupervisionHooks hooks;
  hooks.on_epoch = [&](const v1::EpochMetrics&) { ++epochs; };
  try {
    SuperviseWorkers(workers, hooks);
    FAIL() << "a failed worker was not reported";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("rank 1 killed by signal 9"), std::string::npos) << e.what();
  }
  EXPECT_TRUE(workers.killed);
  EXPECT_EQ(epochs, 1);  // what came before the failure was still relayed
}

TEST(SuperviseWorkers, WorkersThatExitWithoutAResultFailTheJob) {
  FakeWorkers workers;
  workers.events = {Epoch(1)};
  workers.on_poll = [](FakeWorkers& w) { w.exited = true; };
  EXPECT_THROW(SuperviseWorkers(workers, SupervisionHooks{}), std::runtime_error);
  EXPECT_FALSE(workers.killed);
}

}  // namespace
}  // namespace facet::server
