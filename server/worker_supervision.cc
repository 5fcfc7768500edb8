#include "server/worker_supervision.h"

#include <csignal>
#include <stdexcept>

namespace facet::server {

internal::WorkerResult SuperviseWorkers(WorkerProcesses& workers, const SupervisionHooks& hooks) {
  std::optional<internal::WorkerResult> result;
  const auto take = [&](const internal::WorkerEvent& event) {
    if (event.has_progress() && hooks.on_progress) hooks.on_progress(event.progress());
    if (event.has_epoch() && hooks.on_epoch) hooks.on_epoch(event.epoch());
    if (event.has_result()) result = event.result();
  };
  bool cancel_sent = false, suspend_sent = false;
  while (true) {
    while (auto event = workers.NextEvent(std::chrono::milliseconds(100))) {
      take(*event);
      if (!event->has_progress()) break;  // look at signals and exits between bursts
    }
    if (!cancel_sent && hooks.cancel_requested && hooks.cancel_requested()) {
      workers.SignalAll(SIGUSR1);
      cancel_sent = true;
    }
    if (!suspend_sent && hooks.stopping && hooks.stopping()) {
      workers.SignalAll(SIGTERM);
      suspend_sent = true;
    }
    if (auto failure = workers.CheckExits()) {
      workers.KillAll();
      throw std::runtime_error("data-parallel training failed: " + *failure);
    }
    if (workers.AllExited()) break;
  }
  // What rank 0 wrote before it exited (its progress no longer matters).
  while (auto event = workers.NextEvent(std::chrono::milliseconds(0))) {
    if (!event->has_progress()) take(*event);
  }
  if (!result) throw std::runtime_error("the training workers exited without reporting a result");
  return *result;
}

}  // namespace facet::server
