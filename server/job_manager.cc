#include "server/job_manager.h"

#include "core/data/training_data.h"
#include "core/train/trainer.h"
#include "server/proto_convert.h"
#include "server/status.h"

#include <google/protobuf/util/time_util.h>
#include <spdlog/spdlog.h>

#include <chrono>
#include <cmath>
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
  config.data_dir = data_root_.Resolve(request.data_dir(), "data_dir", PathKind::kFolder);
  if (!request.val_dir().empty()) config.val_dir = data_root_.Resolve(request.val_dir(), "val_dir", PathKind::kFolder);
  if (!request.pretrained_encoder().empty()) {
    config.pretrained_encoder = data_root_.Resolve(request.pretrained_encoder(), "pretrained_encoder", PathKind::kFile);
  }
  return config;
}

v1::Job JobManager::Submit(const v1::TrainingConfig& request) {
  if (request.data_dir().empty()) throw StatusError(grpc::StatusCode::INVALID_ARGUMENT, "data_dir: is required");
  const TrainingConfig config = ResolveConfig(request);
  // Refuse now what could only fail later: folders without usable images, or too few for one batch.
  const ScanResult scan = ScanUtkFaceFolder(config.data_dir);
  if (scan.samples.empty()) {
    throw StatusError(grpc::StatusCode::FAILED_PRECONDITION, "data_dir: no usable UTKFace images in '" +
                                                                 request.data_dir() + "' (" + scan.report.Summary() + ")");
  }
  int64_t usable = scan.report.usable;
  if (config.max_images > 0) usable = std::min<int64_t>(usable, config.max_images);
  const int64_t train = config.val_dir.empty() ? usable - static_cast<int64_t>(config.val_fraction * usable) : usable;
  if (train < config.batch_size) {
    throw StatusError(grpc::StatusCode::FAILED_PRECONDITION,
                      "batch_size: " + std::to_string(train) + " training images make no full batch of " +
                          std::to_string(config.batch_size));
  }
  if (!config.val_dir.empty() && ScanUtkFaceFolder(config.val_dir).samples.empty()) {
    throw StatusError(grpc::StatusCode::FAILED_PRECONDITION, "val_dir: no usable UTKFace images");
  }

  v1::Job job;
  job.set_id(NewJobId());
  job.set_state(v1::JOB_STATE_QUEUED);
  *job.mutable_config() = ToProtoConfig(config);
  job.mutable_config()->set_data_dir(request.data_dir());  // as the user named them, relative to the data root
  job.mutable_config()->set_val_dir(request.val_dir());
  job.mutable_config()->set_pretrained_encoder(request.pretrained_encoder());
  job.mutable_progress()->set_total_epochs(config.frozen.epochs + config.unfrozen.epochs);
  *job.mutable_created_at() = TimeUtil::GetCurrentTime();
  store_.PutJob(job);
  spdlog::info("job {} queued: {} {}px batch {} epochs {}+{} on {}", job.id(), config.arch, config.image_size,
               config.batch_size, config.frozen.epochs, config.unfrozen.epochs, request.data_dir());
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

void JobManager::RunJob(v1::Job job) {
  const std::string id = job.id();
  const bool resuming = job.state() == v1::JOB_STATE_RUNNING;
  job.set_state(v1::JOB_STATE_RUNNING);
  job.clear_error();
  if (!job.has_started_at()) *job.mutable_started_at() = TimeUtil::GetCurrentTime();
  PersistAndPublish(job);
  spdlog::info("job {} {}", id, resuming ? "resuming" : "running");

  std::mutex job_mutex;  // the callbacks run on this thread, but Publish readers copy `job` under it
  auto last_progress = SteadyClock::now() - std::chrono::hours(1);
  const auto started = SteadyClock::now();
  int64_t first_step = -1;  // the global step this process started at (after a resume, not 0)
  double best_score = INFINITY;  // ValidationScore of the best epoch this process has seen
  try {
    TrainingConfig config = ResolveConfig(job.config());
    config.checkpoint_dir = (fs::path(options_.state_dir) / "jobs" / id / "checkpoints").string();
    TrainingData data = OpenTrainingData(config);
    spdlog::info("job {} data: {}", id, data.train_report.Summary());
    Trainer trainer(config, *data.train, *data.validation);

    TrainerCallbacks callbacks;
    callbacks.should_stop = [&] {
      std::lock_guard<std::mutex> lock(mutex_);
      return cancel_requested_.count(id) > 0;
    };
    callbacks.should_suspend = [&] {  // shutdown: checkpoint this step, resume here on the next start
      std::lock_guard<std::mutex> lock(mutex_);
      return stopping_;
    };
    callbacks.on_step = [&](const StepProgress& p) {
      const auto now = SteadyClock::now();
      const bool final_step = p.global_step == p.total_steps;
      if (!final_step && now - last_progress < std::chrono::duration<double>(options_.progress_interval_s)) return;
      last_progress = now;
      if (first_step < 0) first_step = p.global_step - 1;
      const double elapsed = std::chrono::duration<double>(now - started).count();
      const int64_t done_steps = p.global_step - first_step;
      const double eta = done_steps > 0 ? elapsed / done_steps * (p.total_steps - p.global_step) : 0.0;
      v1::JobEvent event;
      *event.mutable_progress() = ToProto(p, eta);
      {
        std::lock_guard<std::mutex> lock(job_mutex);
        *job.mutable_progress() = event.progress();
      }
      metrics_.RecordProgress(id, event.progress());
      Publish(id, event, false);
    };
    callbacks.on_epoch = [&](const EpochMetrics& m) {
      v1::JobEvent event;
      *event.mutable_epoch() = ToProto(m);
      {
        std::lock_guard<std::mutex> lock(job_mutex);
        *job.add_history() = event.epoch();
        *job.mutable_latest() = event.epoch();
        if (ValidationScore(m) < best_score) {
          best_score = ValidationScore(m);
          *job.mutable_best() = event.epoch();
        }
        store_.PutJob(job);
      }
      const auto& v = m.validation;
      spdlog::info("job {} epoch {}/{} stage {}: train_loss {:.4f} val_loss {:.4f} age_rmse {:.4f} age_mae {:.2f}y "
                   "gender_acc {:.4f} ethnicity_acc {:.4f} log_vars [{:.3f} {:.3f} {:.3f}] {:.1f} img/s",
                   id, m.epoch, job.progress().total_epochs(), static_cast<int>(m.stage), m.train_loss, v.loss,
                   v.age_rmse, v.age_mae_years, v.gender_accuracy, v.ethnicity_accuracy, m.log_variances[0],
                   m.log_variances[1], m.log_variances[2], m.images_per_s);
      metrics_.RecordEpoch(id, event.epoch());
      Publish(id, event, false);
    };

    const TrainResult result = trainer.Run(callbacks);
    // The trainer's history (restored from the checkpoint, then extended) is authoritative: a crash between a
    // checkpoint and the store update could have left the stored history one epoch short.
    job.clear_history();
    for (const auto& m : result.history) *job.add_history() = ToProto(m);
    if (!result.history.empty()) {
      *job.mutable_latest() = job.history(job.history_size() - 1);
      if (result.best_epoch > 0) *job.mutable_best() = job.history(result.best_epoch - 1);
    }
    if (result.resumed_from_epoch > 0) {
      job.set_resumed_from_epoch(result.resumed_from_epoch);
      spdlog::info("job {} resumed after epoch {}", id, result.resumed_from_epoch);
    }
    if (result.suspended) {
      spdlog::info("job {} suspended by shutdown at epoch {}, step {}: it resumes there on the next start", id,
                   job.progress().epoch(), job.progress().step());
      store_.PutJob(job);  // stays RUNNING
      return;
    }
    if (result.cancelled) {
      job.set_state(v1::JOB_STATE_CANCELLED);
    } else {
      const std::string model_id = ModelRegistry::NewModelId();
      const CalibrationReport calibration = trainer.Calibrate();
      spdlog::info("job {} calibrated on {} validation images: T gender {:.3f}, ethnicity {:.3f}; ECE gender "
                   "{:.4f} -> {:.4f}, ethnicity {:.4f} -> {:.4f}; {:.0f}% age interval x/÷ {:.3f}",
                   id, calibration.n, calibration.calibration.gender_temperature,
                   calibration.calibration.ethnicity_temperature, calibration.gender_ece_before,
                   calibration.gender_ece_after, calibration.ethnicity_ece_before, calibration.ethnicity_ece_after,
                   100 * calibration.calibration.age_coverage, std::exp(calibration.calibration.age_log_halfwidth));
      *job.mutable_calibration() = ToProto(calibration);
      trainer.ExportModel(models_.PathFor(model_id));
      job.set_model_id(model_id);
      job.set_state(v1::JOB_STATE_SUCCEEDED);
      models_.AddTrained(model_id, job);
    }
  } catch (const std::exception& e) {
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
