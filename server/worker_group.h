// Starts and supervises the local training worker processes of one data-parallel job (`facet-server
// train-worker`): torchrun's environment for each rank, a pipe for rank 0's events, one log file per rank, and
// failure detection that does not wait for a collective to time out.
#pragma once

#include "facet/internal/worker.pb.h"
#include "server/worker_supervision.h"

#include <sys/types.h>

#include <chrono>
#include <optional>
#include <string>
#include <vector>

namespace facet::server {

struct WorkerLaunch {
  std::string executable;  // facet-server
  std::string task_file;   // WorkerTask, text format
  std::string log_dir;     // rank-N.log (stdout and stderr) and rank-N.error are written here
  int world_size = 1;
  int local_processes = 1;  // ranks 0..local_processes-1 start here
  std::string master_addr;
  int master_port = 0;
};

// Thread contract: one thread drives it (SuperviseWorkers).
class WorkerGroup final : public WorkerProcesses {
 public:
  // Throws std::runtime_error when a process cannot be started (the ones already started are killed).
  explicit WorkerGroup(const WorkerLaunch& launch);
  ~WorkerGroup() override;  // SIGKILLs and reaps whatever still runs
  WorkerGroup(const WorkerGroup&) = delete;
  WorkerGroup& operator=(const WorkerGroup&) = delete;

  // Rank 0's next event, waiting at most `timeout`; nullopt when none came (or its pipe closed).
  std::optional<internal::WorkerEvent> NextEvent(std::chrono::milliseconds timeout) override;

  void SignalAll(int signal) override;  // to the workers still running
  void KillAll() override;              // SIGKILL, then reap

  // Reaps the workers that exited. When any exited abnormally, describes every such rank (its exit and its error
  // file's message), root causes first: a rank killed by a signal before a rank that failed because a peer died.
  std::optional<std::string> CheckExits() override;
  bool AllExited() const override;

 private:
  struct Worker {
    int rank = 0;
    pid_t pid = -1;
    bool exited = false;
    int status = 0;
    std::string log_path, error_path;
  };
  std::string Describe(const Worker& w) const;

  std::vector<Worker> workers_;
  int events_fd_ = -1;
  std::string buffer_;  // bytes read from the pipe, not yet a whole event
};

}  // namespace facet::server
