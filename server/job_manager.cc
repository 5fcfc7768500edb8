#include "server/job_manager.h"

#include "core/distributed/distributed_group.h"
#include "core/train/run_data.h"
#include "core/train/trainer.h"
#include "core/util/file_util.h"
#include "server/proto_convert.h"
#include "server/status.h"
#include "server/worker_group.h"

#include <arpa/inet.h>
#include <google/protobuf/text_format.h>
#include <google/protobuf/util/time_util.h>
#include <netinet/in.h>
#include <signal.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <random>

namespace facet::server {
namespace {

namespace fs = std::filesystem;
using google::protobuf::util::TimeUtil;
using SteadyClock = std::chrono::steady_clock;

constexpr int kDefaultPageSize = 50;
constexpr int kMaxPageSize = 500;

std::string NewJobId() {
  static thread_local std::mt19937_64 rng(std::random_device{}());
  char id[32];
  std::snprintf(id, sizeof(id), "job-%012llx", static_cast<unsigned long long>(rng() & 0xFFFFFFFFFFFFULL));
  return id;
}

bool IsEnded(v1::JobState s) {
  return s == v1::JOB_STATE_SUCCEEDED || s == v1::JOB_STATE_FAILED || s == v1::JOB_STATE_CANCELLED;
}

v1::JobEvent SnapshotEvent(const v1::Job& job) {
  v1::JobEvent event;
  *event.mutable_snapshot() = job;
  return event;
}

}  // namespace

JobManager::JobManager(JobManagerOptions options, JobStore& store, const DataRoot& data_root, ModelRegistry& models,
                       Metrics& metrics)
    : options_(std::move(options)), store_(store), data_root_(data_root), models_(models), metrics_(metrics) {
  if (options_.concurrent_jobs < 1) throw std::invalid_argument("concurrent_jobs must be >= 1");
  fs::create_directories(fs::path(options_.state_dir) / "jobs");
}

JobManager::~JobManager() {
  Stop();
  for (auto& t : workers_) t.join();
}

void JobManager::Stop() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (stopping_) return;
    stopping_ = true;
  }
  work_.notify_all();
  std::lock_guard<std::mutex> lock(subscribers_mutex_);
  for (auto& [id, sinks] : subscribers_) {
    const auto job = store_.GetJob(id);
    if (!job) continue;
    for (auto& [token, sink] : sinks) sink(SnapshotEvent(*job), /*last=*/true);
  }
  subscribers_.clear();
}

void JobManager::Start() {
  for (const auto& job : store_.JobsInState(v1::JOB_STATE_RUNNING)) {
    spdlog::info("job {} was running when the server stopped: it resumes from its last checkpoint", job.id());
  }
  UpdateJobCounts();
  for (int i = 0; i < options_.concurrent_jobs; ++i) workers_.emplace_back([this] { WorkerLoop(); });
}

TrainingConfig JobManager::ResolveConfig(const v1::TrainingConfig& request) const {
  TrainingConfig config = ToCoreConfig(request);
  config.device = options_.device;
  config.threads = options_.threads;
  ValidateTrainingConfig(config);  // std::invalid_argument "field: ..." -> INVALID_ARGUMENT
  config.data.data_dir = data_root_.Resolve(request.data_dir(), "data_dir", PathKind::kFolder);
  if (!request.val_dir().empty()) {
    config.data.val_dir = data_root_.Resolve(request.val_dir(), "val_dir", PathKind::kFolder);
  }
  if (!request.pretrained_encoder().empty()) {
    config.pretrained_encoder = data_root_.Resolve(request.pretrained_encoder(), "pretrained_encoder", PathKind::kFile);
  }
  return config;
}

v1::Job JobManager::Submit(const v1::TrainingConfig& request) {
  if (request.data_dir().empty()) throw StatusError(grpc::StatusCode::INVALID_ARGUMENT, "data_dir: is required");
  const TrainingConfig config = ResolveConfig(request);
  if (request.has_local_processes() &&
      (request.local_processes() < 1 || request.local_processes() > config.world_size)) {
    throw StatusError(grpc::StatusCode::INVALID_ARGUMENT,
                      "local_processes: must be in [1, world_size=" + std::to_string(config.world_size) + "]");
  }
  if (config.world_size > 1 && !DistributedTrainingAvailable()) {
    throw StatusError(grpc::StatusCode::FAILED_PRECONDITION,
                      "world_size: this server was built without distributed training (FACET_DISTRIBUTED=OFF, or "
                      "no c10d Gloo headers)");
  }
  // Refuse now what could only fail later: folders without usable images, or too few for one batch.
  const ScanResult scan = ScanUtkFaceFolder(config.data.data_dir);
  if (scan.samples.empty()) {
    throw StatusError(grpc::StatusCode::FAILED_PRECONDITION, "data_dir: no usable UTKFace images in '" +
                                                                 request.data_dir() + "' (" + scan.report.Summary() + ")");
  }
  const int64_t train = TrainingImageCount(config.data, scan.report.usable);
  if (train < config.batch_size) {
    throw StatusError(grpc::StatusCode::FAILED_PRECONDITION,
                      "batch_size: " + std::to_string(train) + " training images make no full batch of " +
                          std::to_string(config.batch_size));
  }
  if (!config.data.val_dir.empty() && ScanUtkFaceFolder(config.data.val_dir).samples.empty()) {
    throw StatusError(grpc::StatusCode::FAILED_PRECONDITION, "val_dir: no usable UTKFace images");
  }

  v1::Job job;
  job.set_id(NewJobId());
  job.set_state(v1::JOB_STATE_QUEUED);
  *job.mutable_config() = ToProtoConfig(config);
  job.mutable_config()->set_data_dir(request.data_dir());  // as the user named them, relative to the data root
  job.mutable_config()->set_val_dir(request.val_dir());
  job.mutable_config()->set_pretrained_encoder(request.pretrained_encoder());
  if (request.has_local_processes()) job.mutable_config()->set_local_processes(request.local_processes());
  // A time budget's epochs are planned once training measures its pace: until then, the frozen stage and one.
  job.mutable_progress()->set_total_epochs(config.frozen.epochs +
                                           (config.time_budget_seconds > 0 ? 1 : config.unfrozen.epochs));
  *job.mutable_created_at() = TimeUtil::GetCurrentTime();
  store_.PutJob(job);
  spdlog::info("job {} queued: {} {}px batch {} epochs {}+{} on {}", job.id(), config.arch, config.image_size,
               config.batch_size, config.frozen.epochs,
               config.time_budget_seconds > 0 ? fmt::format("(as fit in {:g} s)", config.time_budget_seconds)
                                        : std::to_string(config.unfrozen.epochs),
               request.data_dir());
  UpdateJobCounts();
  work_.notify_all();
  return job;
}

v1::Job JobManager::Get(const std::string& id) {
  auto job = store_.GetJob(id);
  if (!job) throw StatusError(grpc::StatusCode::NOT_FOUND, "no job '" + id + "'");
  return *job;
}

std::vector<v1::Job> JobManager::List(v1::JobState state, int page_size, const std::string& page_token,
                                      std::string* next) {
  if (page_size < 0) throw StatusError(grpc::StatusCode::INVALID_ARGUMENT, "page_size: must be >= 0");
  page_size = page_size == 0 ? kDefaultPageSize : std::min(page_size, kMaxPageSize);
  auto jobs = store_.ListJobs(state, page_size, page_token, next);
  for (auto& job : jobs) job.clear_history();
  return jobs;
}

v1::Job JobManager::Cancel(const std::string& id) {
  std::unique_lock<std::mutex> lock(mutex_);
  v1::Job job = Get(id);
  if (IsEnded(job.state())) {
    throw StatusError(grpc::StatusCode::FAILED_PRECONDITION,
                      "job " + id + " already ended (" + JobStateName(job.state()) + ")");
  }
  if (claimed_.count(id)) {  // running: the trainer stops between two steps
    cancel_requested_.insert(id);
    spdlog::info("job {} cancellation requested", id);
    return job;
  }
  // Still under mutex_, so no worker can claim the job between this check and the store update.
  job.set_state(v1::JOB_STATE_CANCELLED);
  *job.mutable_finished_at() = TimeUtil::GetCurrentTime();
  PersistAndPublish(job);
  spdlog::info("job {} cancelled while queued", id);
  return job;
}

uint64_t JobManager::Subscribe(const std::string& id, EventSink sink) {
  std::lock_guard<std::mutex> lock(subscribers_mutex_);
  // Read under the subscribers lock: every later change is published after this snapshot.
  const v1::Job job = Get(id);
  const bool ended = IsEnded(job.state());
  sink(SnapshotEvent(job), ended);
  if (ended) return 0;
  const uint64_t token = next_token_++;
  subscribers_[id][token] = std::move(sink);
  return token;
}

void JobManager::Unsubscribe(const std::string& id, uint64_t token) {
  std::lock_guard<std::mutex> lock(subscribers_mutex_);
  auto it = subscribers_.find(id);
  if (it == subscribers_.end()) return;
  it->second.erase(token);
  if (it->second.empty()) subscribers_.erase(it);
}

void JobManager::DeliverLocked(const std::string& id, const v1::JobEvent& event, bool last) {
  auto it = subscribers_.find(id);
  if (it == subscribers_.end()) return;
  for (auto& [token, sink] : it->second) sink(event, last);
  if (last) subscribers_.erase(it);  // an ended job has nothing more to say
}

void JobManager::Publish(const std::string& id, const v1::JobEvent& event, bool last) {
  std::lock_guard<std::mutex> lock(subscribers_mutex_);
  DeliverLocked(id, event, last);
}

void JobManager::PersistAndPublish(const v1::Job& job) {
  {
    std::lock_guard<std::mutex> lock(subscribers_mutex_);  // store and publish in one order for every watcher
    store_.PutJob(job);
    DeliverLocked(job.id(), SnapshotEvent(job), IsEnded(job.state()));
  }
  UpdateJobCounts();
}

void JobManager::UpdateJobCounts() { metrics_.SetJobCounts(store_.CountJobsByState()); }

bool JobManager::ClaimNext(v1::Job* job) {
  // Interrupted jobs first (they were running before the restart), then the queue in submission order.
  for (v1::JobState state : {v1::JOB_STATE_RUNNING, v1::JOB_STATE_QUEUED}) {
    for (auto& candidate : store_.JobsInState(state)) {
      if (claimed_.count(candidate.id())) continue;
      claimed_.insert(candidate.id());
      *job = std::move(candidate);
      return true;
    }
  }
  return false;
}

void JobManager::WorkerLoop() {
  while (true) {
    v1::Job job;
    {
      std::unique_lock<std::mutex> lock(mutex_);
      work_.wait(lock, [&] { return stopping_ || ClaimNext(&job); });
      if (stopping_) {
        claimed_.erase(job.id());
        return;
      }
    }
    RunJob(job);
    std::lock_guard<std::mutex> lock(mutex_);
    claimed_.erase(job.id());
    cancel_requested_.erase(job.id());
  }
}

struct JobManager::JobRun {
  explicit JobRun(v1::Job j) : job(std::move(j)) {}
  v1::Job job;
  std::mutex mutex;  // reports arrive on this thread, but readers copy `job` under it
  SteadyClock::time_point last_progress = SteadyClock::now() - std::chrono::hours(1);
  const SteadyClock::time_point started = SteadyClock::now();
  int64_t first_step = -1;       // the global step this process started at (after a resume, not 0)
  double best_score = INFINITY;  // ValidationScore of the best epoch this process has seen
};

struct JobManager::TrainingOutcome {
  std::vector<v1::EpochMetrics> history;  // the trainer's, restored from the checkpoint and then extended
  int best_epoch = 0;
  int resumed_from_epoch = 0;
  bool cancelled = false;
  bool suspended = false;
  std::string model_id;  // set when a model was exported
  v1::Calibration calibration;
};

namespace {

// The same quantity as core's ValidationScore, from the API's message.
double ValidationScore(const v1::EpochMetrics& m) {
  return m.validation().age_loss() + m.validation().gender_loss() + m.validation().ethnicity_loss();
}

void LogCalibration(const std::string& id, const v1::Calibration& c) {
  spdlog::info("job {} calibrated on {} validation images: T gender {:.3f}, ethnicity {:.3f}; ECE gender "
               "{:.4f} -> {:.4f}, ethnicity {:.4f} -> {:.4f}; {:.0f}% age interval x/÷ {:.3f}",
               id, c.n(), c.gender_temperature(), c.ethnicity_temperature(), c.gender_ece_before(),
               c.gender_ece_after(), c.ethnicity_ece_before(), c.ethnicity_ece_after(), 100 * c.age_coverage(),
               std::exp(c.age_log_halfwidth()));
}

int FreeTcpPort() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_ANY);
  socklen_t length = sizeof(address);
  if (fd < 0 || ::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) != 0) {
    if (fd >= 0) ::close(fd);
    throw std::runtime_error(std::string("cannot find a free port for the rendezvous: ") + std::strerror(errno));
  }
  ::close(fd);
  return ntohs(address.sin_port);
}

}  // namespace

bool JobManager::CancelRequested(const std::string& id) {
  std::lock_guard<std::mutex> lock(mutex_);
  return cancel_requested_.count(id) > 0;
}

void JobManager::ReportProgress(JobRun& run, v1::Progress progress) {
  const auto now = SteadyClock::now();
  const bool final_step = progress.global_step() == progress.total_steps();
  if (!final_step && now - run.last_progress < std::chrono::duration<double>(options_.progress_interval_s)) return;
  run.last_progress = now;
  if (run.first_step < 0) run.first_step = progress.global_step() - 1;
  const double elapsed = std::chrono::duration<double>(now - run.started).count();
  const int64_t done_steps = progress.global_step() - run.first_step;
  progress.set_eta_seconds(done_steps > 0 ? elapsed / done_steps * (progress.total_steps() - progress.global_step())
                                          : 0.0);
  v1::JobEvent event;
  *event.mutable_progress() = progress;
  {
    std::lock_guard<std::mutex> lock(run.mutex);
    *run.job.mutable_progress() = progress;
  }
  metrics_.RecordProgress(run.job.id(), progress);
  Publish(run.job.id(), event, false);
}

void JobManager::ReportEpoch(JobRun& run, const v1::EpochMetrics& m) {
  v1::JobEvent event;
  *event.mutable_epoch() = m;
  {
    std::lock_guard<std::mutex> lock(run.mutex);
    *run.job.add_history() = m;
    *run.job.mutable_latest() = m;
    if (ValidationScore(m) < run.best_score) {
      run.best_score = ValidationScore(m);
      *run.job.mutable_best() = m;
    }
    store_.PutJob(run.job);
  }
  const auto& v = m.validation();
  spdlog::info("job {} epoch {}/{} stage {}: train_loss {:.4f} val_loss {:.4f} age_rmse {:.4f} age_mae {:.2f}y "
               "gender_acc {:.4f} ethnicity_acc {:.4f} log_vars [{:.3f} {:.3f} {:.3f}] {:.1f} img/s",
               run.job.id(), m.epoch(), run.job.progress().total_epochs(), m.stage(), m.train_loss(), v.loss(),
               v.age_rmse(), v.age_mae_years(), v.gender_accuracy(), v.ethnicity_accuracy(),
               m.log_variances_size() > 2 ? m.log_variances(0) : 0.0, m.log_variances_size() > 2 ? m.log_variances(1) : 0.0,
               m.log_variances_size() > 2 ? m.log_variances(2) : 0.0, m.images_per_s());
  metrics_.RecordEpoch(run.job.id(), m);
  Publish(run.job.id(), event, false);
}

JobManager::TrainingOutcome JobManager::TrainInProcess(JobRun& run, const TrainingConfig& config) {
  const std::string& id = run.job.id();
  TrainingData data = OpenTrainingData(config);
  spdlog::info("job {} data: {}", id, data.train_report.Summary());
  Trainer trainer(config, *data.train, *data.validation);

  TrainerCallbacks callbacks;
  callbacks.should_stop = [&] { return CancelRequested(id); };
  callbacks.should_suspend = [&] {  // shutdown: checkpoint this step, resume here on the next start
    std::lock_guard<std::mutex> lock(mutex_);
    return stopping_;
  };
  callbacks.on_step = [&](const StepProgress& p) { ReportProgress(run, ToProto(p, 0.0)); };
  callbacks.on_epoch = [&](const EpochMetrics& m) { ReportEpoch(run, ToProto(m)); };
  const TrainResult result = trainer.Run(callbacks);

  TrainingOutcome outcome;
  for (const auto& m : result.history) outcome.history.push_back(ToProto(m));
  outcome.best_epoch = result.best_epoch;
  outcome.resumed_from_epoch = result.resumed_from_epoch;
  outcome.cancelled = result.cancelled;
  outcome.suspended = result.suspended;
  if (!result.cancelled && !result.suspended) {
    outcome.calibration = ToProto(trainer.Calibrate());
    outcome.model_id = ModelRegistry::NewModelId();
    trainer.ExportModel(models_.PathFor(outcome.model_id));
  }
  return outcome;
}

internal::WorkerTask JobManager::MakeWorkerTask(const std::string& id, const TrainingConfig& config,
                                               int local_processes, const std::string& model_id) const {
  internal::WorkerTask task;
  task.set_job_id(id);
  *task.mutable_config() = ToProtoConfig(config);  // resolved paths
  task.set_device(config.device);
  // The local ranks share this host's cores (on a GPU host their CPU threads feed the GPUs).
  const int cores = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  const int threads = options_.threads > 0 ? options_.threads : cores;
  task.set_threads(std::max(1, threads / local_processes));
  // Absolute paths: the file also serves ranks started by hand, from any folder.
  task.set_checkpoint_dir(fs::absolute(config.checkpoint_dir).string());
  task.set_export_path(fs::absolute(models_.PathFor(model_id)).string());
  task.set_master_addr(options_.rendezvous_address);
  task.set_master_port(FreeTcpPort());
  task.set_rendezvous_timeout_s(options_.rendezvous_timeout_s);
  task.set_collective_timeout_s(options_.collective_timeout_s);
  return task;
}

JobManager::TrainingOutcome JobManager::TrainDistributed(JobRun& run, const TrainingConfig& config,
                                                         int local_processes) {
  const std::string id = run.job.id();
  const fs::path job_dir = fs::path(options_.state_dir) / "jobs" / id;
  const std::string model_id = ModelRegistry::NewModelId();

  const internal::WorkerTask task = MakeWorkerTask(id, config, local_processes, model_id);
  std::string task_text;
  google::protobuf::TextFormat::PrintToString(task, &task_text);
  const std::string task_file = (job_dir / "worker-task.txtpb").string();
  fs::create_directories(job_dir);
  WriteFileAtomically(task_file, task_text);
  {
    std::lock_guard<std::mutex> lock(run.mutex);
    run.job.set_rendezvous(task.master_addr() + ":" + std::to_string(task.master_port()));
    store_.PutJob(run.job);
  }

  WorkerLaunch launch;
  launch.executable = options_.worker_executable.empty() ? fs::read_symlink("/proc/self/exe").string()
                                                         : options_.worker_executable;
  launch.task_file = task_file;
  launch.log_dir = job_dir.string();
  launch.world_size = config.world_size;
  launch.local_processes = local_processes;
  launch.master_addr = task.master_addr();
  launch.master_port = task.master_port();
  spdlog::info("job {}: starting {} of {} training processes, rendezvous {}:{} (task {})", id, local_processes,
               config.world_size, launch.master_addr, launch.master_port, task_file);
  WorkerGroup workers(launch);
  SupervisionHooks hooks;
  hooks.on_progress = [&](const v1::Progress& p) { ReportProgress(run, p); };
  hooks.on_epoch = [&](const v1::EpochMetrics& m) { ReportEpoch(run, m); };
  hooks.cancel_requested = [&] { return CancelRequested(id); };
  hooks.stopping = [&] {
    std::lock_guard<std::mutex> lock(mutex_);
    return stopping_;
  };
  const internal::WorkerResult result = SuperviseWorkers(workers, hooks);

  TrainingOutcome outcome;
  outcome.history.assign(result.history().begin(), result.history().end());
  outcome.best_epoch = result.best_epoch();
  outcome.resumed_from_epoch = result.resumed_from_epoch();
  outcome.cancelled = result.cancelled();
  outcome.suspended = result.suspended();
  if (result.has_calibration()) {
    outcome.model_id = model_id;
    outcome.calibration = result.calibration();
  }
  return outcome;
}

void JobManager::RunJob(v1::Job initial) {
  JobRun run(std::move(initial));
  v1::Job& job = run.job;
  const std::string id = job.id();
  const bool resuming = job.state() == v1::JOB_STATE_RUNNING;
  job.set_state(v1::JOB_STATE_RUNNING);
  job.clear_error();
  if (!job.has_started_at()) *job.mutable_started_at() = TimeUtil::GetCurrentTime();
  PersistAndPublish(job);
  spdlog::info("job {} {}", id, resuming ? "resuming" : "running");

  try {
    TrainingConfig config = ResolveConfig(job.config());
    config.checkpoint_dir = (fs::path(options_.state_dir) / "jobs" / id / "checkpoints").string();
    const int local_processes =
        job.config().has_local_processes() ? job.config().local_processes() : config.world_size;
    TrainingOutcome outcome = config.world_size > 1 ? TrainDistributed(run, config, local_processes)
                                                    : TrainInProcess(run, config);
    std::lock_guard<std::mutex> lock(run.mutex);
    // The trainer's history (restored from the checkpoint, then extended) is authoritative: a crash between a
    // checkpoint and the store update could have left the stored history one epoch short.
    job.clear_history();
    for (const auto& m : outcome.history) *job.add_history() = m;
    if (!outcome.history.empty()) {
      *job.mutable_latest() = job.history(job.history_size() - 1);
      if (outcome.best_epoch > 0) *job.mutable_best() = job.history(outcome.best_epoch - 1);
    }
    if (outcome.resumed_from_epoch > 0) {
      job.set_resumed_from_epoch(outcome.resumed_from_epoch);
      spdlog::info("job {} resumed after epoch {}", id, outcome.resumed_from_epoch);
    }
    if (outcome.suspended) {
      spdlog::info("job {} suspended by shutdown at epoch {}, step {}: it resumes there on the next start", id,
                   job.progress().epoch(), job.progress().step());
      store_.PutJob(job);  // stays RUNNING
      return;
    }
    if (outcome.cancelled) {
      job.set_state(v1::JOB_STATE_CANCELLED);
    } else {
      LogCalibration(id, outcome.calibration);
      *job.mutable_calibration() = outcome.calibration;
      job.set_model_id(outcome.model_id);
      job.set_state(v1::JOB_STATE_SUCCEEDED);
      models_.AddTrained(outcome.model_id, job);
    }
  } catch (const std::exception& e) {
    std::lock_guard<std::mutex> lock(run.mutex);
    job.set_state(v1::JOB_STATE_FAILED);
    job.set_error(e.what());
  }
  *job.mutable_finished_at() = TimeUtil::GetCurrentTime();
  if (job.state() == v1::JOB_STATE_FAILED) {
    spdlog::error("job {} failed: {}", id, job.error());
  } else {
    spdlog::info("job {} {}{}", id, JobStateName(job.state()),
                 job.model_id().empty() ? "" : ", model " + job.model_id());
  }
  PersistAndPublish(job);
}

}  // namespace facet::server
