// The supervision loop of a data-parallel job: it relays rank 0's events, passes a cancel or a server shutdown on
// to the workers, notices a failed worker without waiting for a collective to time out, and returns rank 0's
// result. Apart from WorkerGroup's processes, so that a test can drive it with a fake group.
#pragma once

#include "facet/internal/worker.pb.h"
#include "facet/v1/facet.pb.h"

#include <chrono>
#include <functional>
#include <optional>
#include <string>

namespace facet::server {

// What the loop needs of a group of worker processes (WorkerGroup; a fake in tests). Called from one thread.
class WorkerProcesses {
 public:
  virtual ~WorkerProcesses() = default;
  // Rank 0's next event, waiting at most `timeout`; nullopt when none came.
  virtual std::optional<internal::WorkerEvent> NextEvent(std::chrono::milliseconds timeout) = 0;
  virtual void SignalAll(int signal) = 0;  // to the workers still running
  virtual void KillAll() = 0;
  // Reaps exited workers; a description of the failed ones when any exited abnormally.
  virtual std::optional<std::string> CheckExits() = 0;
  virtual bool AllExited() const = 0;
};

struct SupervisionHooks {
  std::function<void(const v1::Progress&)> on_progress;
  std::function<void(const v1::EpochMetrics&)> on_epoch;
  std::function<bool()> cancel_requested;  // polled: true sends SIGUSR1 once (the workers stop and report)
  std::function<bool()> stopping;          // polled: true sends SIGTERM once (the workers checkpoint and exit)
};

// Runs until every worker has exited. Returns rank 0's result. Throws std::runtime_error after killing the group
// when a worker fails (with CheckExits' description), and when the workers all exited without a result.
internal::WorkerResult SuperviseWorkers(WorkerProcesses& workers, const SupervisionHooks& hooks);

}  // namespace facet::server
