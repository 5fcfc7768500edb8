// The training job queue: submission and validation, the worker thread(s) that run jobs with the core trainer,
// cancellation, resume after a restart, and the event stream that WatchJob serves. Thread-safe.
#pragma once

#include "core/train/training_config.h"
#include "facet/internal/worker.pb.h"
#include "server/data_root.h"
#include "server/job_store.h"
#include "server/metrics.h"
#include "server/model_registry.h"

#include <atomic>
#include <condition_variable>
#include <functional>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

namespace facet::server {

struct JobManagerOptions {
  std::string state_dir;         // jobs/<id>/checkpoints live here
  std::string device = "auto";   // what every job trains on
  int threads = 0;               // LibTorch intra-op threads for training (0: all cores)
  int concurrent_jobs = 1;       // jobs that train at the same time
  double progress_interval_s = 0.5;  // at most this often a progress event per job
  // Data-parallel jobs (world_size > 1) run as `WORKER_EXECUTABLE train-worker` processes.
  std::string worker_executable;     // empty: this process's own executable
  std::string rendezvous_address = "127.0.0.1";  // where rank 0's c10d store listens; other hosts must reach it
  int rendezvous_timeout_s = 300;    // for every rank to join
  int collective_timeout_s = 300;    // for one collective (a rank that dies on this host fails the job at once)
};

class JobManager {
 public:
  // (event, last): `last` is true for the event after which the job will never change again.
  using EventSink = std::function<void(const v1::JobEvent& event, bool last)>;

  JobManager(JobManagerOptions options, JobStore& store, const DataRoot& data_root, ModelRegistry& models,
             Metrics& metrics);
  // Calls Stop, then waits for the workers.
  ~JobManager();

  // Begins shutting down, without waiting: running jobs write a checkpoint of their current step and stay RUNNING
  // in the store (the next start resumes them there), queued jobs stay queued, and WatchJob streams end (their
  // jobs will not change while this process lives).
  void Stop();

  // Starts the worker threads; jobs left RUNNING by a previous process are resumed first, then QUEUED ones in order.
  void Start();

  // INVALID_ARGUMENT naming the field, or FAILED_PRECONDITION when the data has no usable image / no full batch.
  v1::Job Submit(const v1::TrainingConfig& config);
  v1::Job Get(const std::string& id);  // NOT_FOUND
  std::vector<v1::Job> List(v1::JobState state, int page_size, const std::string& page_token, std::string* next);
  v1::Job Cancel(const std::string& id);  // NOT_FOUND, FAILED_PRECONDITION once ended

  // Delivers the job's current state at once, then its events, until Unsubscribe. NOT_FOUND for unknown ids.
  // The sink is called without any of the manager's locks on jobs held, but must not call back into the manager.
  uint64_t Subscribe(const std::string& id, EventSink sink);
  void Unsubscribe(const std::string& id, uint64_t token);

 private:
  struct JobRun;           // the live state of a job being trained
  struct TrainingOutcome;  // how its training ended
  void WorkerLoop();
  bool ClaimNext(v1::Job* job);
  void RunJob(v1::Job job);
  TrainingOutcome TrainInProcess(JobRun& run, const TrainingConfig& config);
  TrainingOutcome TrainDistributed(JobRun& run, const TrainingConfig& config, int local_processes);
  // What every rank of a data-parallel job reads: its config with resolved paths, threads, rendezvous, export.
  internal::WorkerTask MakeWorkerTask(const std::string& id, const TrainingConfig& config, int local_processes,
                                      const std::string& model_id) const;
  void ReportProgress(JobRun& run, v1::Progress progress);
  void ReportEpoch(JobRun& run, const v1::EpochMetrics& epoch);
  bool CancelRequested(const std::string& id);
  void Publish(const std::string& id, const v1::JobEvent& event, bool last);
  void DeliverLocked(const std::string& id, const v1::JobEvent& event, bool last);  // subscribers_mutex_ held
  void PersistAndPublish(const v1::Job& job);
  void UpdateJobCounts();
  TrainingConfig ResolveConfig(const v1::TrainingConfig& config) const;

  const JobManagerOptions options_;
  JobStore& store_;
  const DataRoot& data_root_;
  ModelRegistry& models_;
  Metrics& metrics_;

  std::mutex mutex_;  // guards the queue state below
  std::condition_variable work_;
  bool stopping_ = false;
  std::set<std::string> claimed_;             // jobs a worker has taken
  std::set<std::string> cancel_requested_;    // running jobs to stop at the next step
  std::vector<std::thread> workers_;

  std::mutex subscribers_mutex_;  // guards subscribers_; held while delivering so Unsubscribe is final
  std::map<std::string, std::map<uint64_t, EventSink>> subscribers_;
  uint64_t next_token_ = 1;
};

}  // namespace facet::server
