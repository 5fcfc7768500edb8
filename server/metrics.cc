#include "server/metrics.h"

#include "client/status_code_name.h"
#include "core/labels.h"
#include "server/proto_convert.h"

#include <prometheus/counter.h>
#include <prometheus/exposer.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>
#include <prometheus/text_serializer.h>

#include <unistd.h>

#include <chrono>
#include <fstream>
#include <map>
#include <mutex>
#include <iterator>
#include <sstream>

namespace facet::server {
namespace {

using prometheus::BuildCounter;
using prometheus::BuildGauge;
using prometheus::BuildHistogram;

const char* const kTasks[] = {"age", "gender", "ethnicity"};

prometheus::Histogram::BucketBoundaries LatencyBuckets() {
  return {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};
}

// The standard process_* metrics (Prometheus client conventions), read from /proc/self at scrape time.
class ProcessCollector final : public prometheus::Collectable {
 public:
  ProcessCollector() : start_time_(std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count()) {}
  std::vector<prometheus::MetricFamily> Collect() const override {
    double cpu_seconds = 0, resident_bytes = 0, virtual_bytes = 0;
    std::ifstream stat("/proc/self/stat");
    std::string line;
    if (std::getline(stat, line)) {
      // Fields after the command name (which may hold spaces, so start after its closing parenthesis).
      std::istringstream fields(line.substr(line.rfind(')') + 2));
      std::vector<std::string> f{std::istream_iterator<std::string>(fields), std::istream_iterator<std::string>()};
      const double ticks = static_cast<double>(sysconf(_SC_CLK_TCK));
      if (f.size() > 22) {
        cpu_seconds = (std::stod(f[11]) + std::stod(f[12])) / ticks;  // utime + stime
        virtual_bytes = std::stod(f[20]);
        resident_bytes = std::stod(f[21]) * static_cast<double>(sysconf(_SC_PAGESIZE));
      }
    }
    return {Family("process_cpu_seconds_total", "Total user and system CPU time spent in seconds.",
                   prometheus::MetricType::Counter, cpu_seconds),
            Family("process_resident_memory_bytes", "Resident memory size in bytes.", prometheus::MetricType::Gauge,
                   resident_bytes),
            Family("process_virtual_memory_bytes", "Virtual memory size in bytes.", prometheus::MetricType::Gauge,
                   virtual_bytes),
            Family("process_start_time_seconds", "Start time of the process since unix epoch in seconds.",
                   prometheus::MetricType::Gauge, start_time_)};
  }

 private:
  static prometheus::MetricFamily Family(const std::string& name, const std::string& help, prometheus::MetricType type,
                                         double value) {
    prometheus::ClientMetric metric;
    if (type == prometheus::MetricType::Counter) {
      metric.counter.value = value;
    } else {
      metric.gauge.value = value;
    }
    return prometheus::MetricFamily{name, help, type, {metric}};
  }
  double start_time_;
};

}  // namespace

struct Metrics::State {
  std::shared_ptr<prometheus::Registry> registry = std::make_shared<prometheus::Registry>();
  std::shared_ptr<ProcessCollector> process = std::make_shared<ProcessCollector>();
  std::unique_ptr<prometheus::Exposer> exposer;
  std::mutex mutex;  // guards the label maps below and the families' Add/Remove

  prometheus::Family<prometheus::Gauge>& server_info = BuildGauge().Name("facet_server_info")
      .Help("1, labelled with facet's version, LibTorch's version and the device models run on").Register(*registry);
  prometheus::Family<prometheus::Gauge>& jobs = BuildGauge().Name("facet_training_jobs")
      .Help("Training jobs by state").Register(*registry);
  prometheus::Family<prometheus::Gauge>& train_loss = BuildGauge().Name("facet_job_train_loss")
      .Help("Mean combined training loss of the job's latest epoch").Register(*registry);
  prometheus::Family<prometheus::Gauge>& validation_loss = BuildGauge().Name("facet_job_validation_loss")
      .Help("Combined validation loss of the job's latest epoch").Register(*registry);
  prometheus::Family<prometheus::Gauge>& task_loss = BuildGauge().Name("facet_job_validation_task_loss")
      .Help("Validation loss of each task, latest epoch").Register(*registry);
  prometheus::Family<prometheus::Gauge>& age_rmse = BuildGauge().Name("facet_job_validation_age_rmse")
      .Help("Validation RMSE of the scaled log-age, latest epoch").Register(*registry);
  prometheus::Family<prometheus::Gauge>& age_mae = BuildGauge().Name("facet_job_validation_age_mae_years")
      .Help("Validation mean absolute age error in years, latest epoch").Register(*registry);
  prometheus::Family<prometheus::Gauge>& accuracy = BuildGauge().Name("facet_job_validation_accuracy_ratio")
      .Help("Validation accuracy of the gender and ethnicity tasks, latest epoch").Register(*registry);
  prometheus::Family<prometheus::Gauge>& class_accuracy = BuildGauge().Name("facet_job_validation_class_accuracy_ratio")
      .Help("Validation accuracy (recall) per class, latest epoch").Register(*registry);
  prometheus::Family<prometheus::Gauge>& group_age_mae = BuildGauge()
      .Name("facet_job_validation_group_age_mae_years")
      .Help("Validation mean absolute age error by group (dimension: ethnicity, gender, age_decade), latest epoch")
      .Register(*registry);
  prometheus::Family<prometheus::Gauge>& group_accuracy = BuildGauge()
      .Name("facet_job_validation_group_accuracy_ratio")
      .Help("Validation accuracy of the gender and ethnicity tasks by group, latest epoch").Register(*registry);
  prometheus::Family<prometheus::Gauge>& calibration_error = BuildGauge()
      .Name("facet_job_validation_calibration_error_ratio")
      .Help("Expected calibration error (15 bins) of the raw softmax, latest epoch").Register(*registry);
  prometheus::Family<prometheus::Gauge>& log_variance = BuildGauge().Name("facet_job_task_log_variance")
      .Help("Learned log-variance s of each task's loss").Register(*registry);
  prometheus::Family<prometheus::Gauge>& effective_weight = BuildGauge().Name("facet_job_task_effective_weight")
      .Help("Coefficient of each task's loss in the total").Register(*registry);
  prometheus::Family<prometheus::Gauge>& epoch = BuildGauge().Name("facet_job_epoch")
      .Help("The job's current epoch (1-based, both stages)").Register(*registry);
  prometheus::Family<prometheus::Gauge>& epochs_total = BuildGauge().Name("facet_job_epochs")
      .Help("The job's total number of epochs").Register(*registry);
  prometheus::Family<prometheus::Gauge>& images_per_second = BuildGauge().Name("facet_job_images_per_second")
      .Help("Training throughput of the running epoch, data loading included").Register(*registry);

  prometheus::Family<prometheus::Counter>& requests = BuildCounter().Name("facet_predict_requests_total")
      .Help("Predict requests by gRPC status code").Register(*registry);
  prometheus::Family<prometheus::Counter>& images = BuildCounter().Name("facet_predict_images_total")
      .Help("Images received by Predict, by outcome").Register(*registry);
  prometheus::Histogram& latency = BuildHistogram().Name("facet_predict_latency_seconds")
      .Help("Predict latency, from arrival to answer").Register(*registry).Add({}, LatencyBuckets());
  prometheus::Histogram& queue_time = BuildHistogram().Name("facet_predict_queue_seconds")
      .Help("Time an image waits in the batcher's queue").Register(*registry).Add({}, LatencyBuckets());
  prometheus::Histogram& compute_time = BuildHistogram().Name("facet_predict_batch_compute_seconds")
      .Help("Forward-pass time of one batch").Register(*registry).Add({}, LatencyBuckets());
  prometheus::Histogram& batch_size = BuildHistogram().Name("facet_predict_batch_size")
      .Help("Images per forward pass").Register(*registry)
      .Add({}, prometheus::Histogram::BucketBoundaries{1, 2, 4, 8, 16, 32, 64, 128, 256});
  prometheus::Family<prometheus::Gauge>& active_model = BuildGauge().Name("facet_active_model_info")
      .Help("1 for the model Predict serves (label model_id)").Register(*registry);
  prometheus::Gauge& model_active = BuildGauge().Name("facet_model_active")
      .Help("1 while a model is active and Predict can answer").Register(*registry).Add({});
  std::map<std::string, prometheus::Gauge*> active_model_gauges;
};

Metrics::Metrics(const std::string& address) : state_(std::make_unique<State>()) {
  if (!address.empty()) {
    try {
      state_->exposer = std::make_unique<prometheus::Exposer>(address);
    } catch (const std::exception& e) {
      throw std::runtime_error("cannot serve metrics on '" + address + "': " + e.what());
    }
    state_->exposer->RegisterCollectable(state_->registry);
    state_->exposer->RegisterCollectable(state_->process);
  }
  for (int s = v1::JOB_STATE_QUEUED; s <= v1::JOB_STATE_CANCELLED; ++s) {
    state_->jobs.Add({{"state", JobStateName(static_cast<v1::JobState>(s))}}).Set(0);
  }
  for (const auto code : {grpc::StatusCode::OK, grpc::StatusCode::INVALID_ARGUMENT, grpc::StatusCode::RESOURCE_EXHAUSTED,
                          grpc::StatusCode::UNAVAILABLE, grpc::StatusCode::DEADLINE_EXCEEDED}) {
    state_->requests.Add({{"code", client::StatusCodeName(code)}});
  }
}

Metrics::~Metrics() = default;

void Metrics::SetJobCounts(const std::vector<std::pair<v1::JobState, int64_t>>& counts) {
  std::lock_guard<std::mutex> lock(state_->mutex);
  for (int s = v1::JOB_STATE_QUEUED; s <= v1::JOB_STATE_CANCELLED; ++s) {
    int64_t n = 0;
    for (const auto& [state, count] : counts) n += state == s ? count : 0;
    state_->jobs.Add({{"state", JobStateName(static_cast<v1::JobState>(s))}}).Set(static_cast<double>(n));
  }
}

void Metrics::RecordEpoch(const std::string& job_id, const v1::EpochMetrics& m) {
  std::lock_guard<std::mutex> lock(state_->mutex);
  const prometheus::Labels job{{"job_id", job_id}};
  state_->train_loss.Add(job).Set(m.train_loss());
  state_->validation_loss.Add(job).Set(m.validation().loss());
  state_->age_rmse.Add(job).Set(m.validation().age_rmse());
  state_->age_mae.Add(job).Set(m.validation().age_mae_years());
  state_->accuracy.Add({{"job_id", job_id}, {"task", "gender"}}).Set(m.validation().gender_accuracy());
  state_->accuracy.Add({{"job_id", job_id}, {"task", "ethnicity"}}).Set(m.validation().ethnicity_accuracy());
  const double task_losses[] = {m.validation().age_loss(), m.validation().gender_loss(), m.validation().ethnicity_loss()};
  for (int t = 0; t < 3; ++t) {
    const prometheus::Labels labels{{"job_id", job_id}, {"task", kTasks[t]}};
    state_->task_loss.Add(labels).Set(task_losses[t]);
    if (t < m.log_variances_size()) state_->log_variance.Add(labels).Set(m.log_variances(t));
    if (t < m.effective_weights_size()) state_->effective_weight.Add(labels).Set(m.effective_weights(t));
  }
  for (int c = 0; c < m.validation().gender_class_accuracy_size() && c < kNumGenders; ++c) {
    state_->class_accuracy.Add({{"job_id", job_id}, {"task", "gender"}, {"class", kGenderNames[c]}})
        .Set(m.validation().gender_class_accuracy(c));
  }
  for (int c = 0; c < m.validation().ethnicity_class_accuracy_size() && c < kNumEthnicities; ++c) {
    state_->class_accuracy.Add({{"job_id", job_id}, {"task", "ethnicity"}, {"class", kEthnicityNames[c]}})
        .Set(m.validation().ethnicity_class_accuracy(c));
  }
  state_->calibration_error.Add({{"job_id", job_id}, {"task", "gender"}}).Set(m.validation().gender_ece());
  state_->calibration_error.Add({{"job_id", job_id}, {"task", "ethnicity"}}).Set(m.validation().ethnicity_ece());
  for (const auto& g : m.validation().groups()) {
    const prometheus::Labels group{{"job_id", job_id}, {"dimension", g.dimension()}, {"group", g.group()}};
    state_->group_age_mae.Add(group).Set(g.age_mae_years());
    auto with_task = [&](const char* task) {
      auto labels = group;
      labels["task"] = task;
      return labels;
    };
    state_->group_accuracy.Add(with_task("gender")).Set(g.gender_accuracy());
    state_->group_accuracy.Add(with_task("ethnicity")).Set(g.ethnicity_accuracy());
  }
  state_->epoch.Add(job).Set(m.epoch());
}

void Metrics::RecordProgress(const std::string& job_id, const v1::Progress& p) {
  std::lock_guard<std::mutex> lock(state_->mutex);
  const prometheus::Labels job{{"job_id", job_id}};
  state_->epoch.Add(job).Set(p.epoch());
  state_->epochs_total.Add(job).Set(p.total_epochs());
  state_->images_per_second.Add(job).Set(p.images_per_s());
}

void Metrics::RecordPredict(grpc::StatusCode code, double latency_seconds) {
  std::lock_guard<std::mutex> lock(state_->mutex);
  state_->requests.Add({{"code", client::StatusCodeName(code)}}).Increment();
  state_->latency.Observe(latency_seconds);
}

void Metrics::RecordImage(const std::string& outcome) {
  std::lock_guard<std::mutex> lock(state_->mutex);
  state_->images.Add({{"outcome", outcome}}).Increment();
}

void Metrics::RecordQueueTime(double seconds) { state_->queue_time.Observe(seconds); }

void Metrics::RecordBatch(int batch_size, double compute_seconds) {
  state_->batch_size.Observe(batch_size);
  state_->compute_time.Observe(compute_seconds);
}

void Metrics::SetServerInfo(const std::string& version, const std::string& libtorch_version,
                            const std::string& device) {
  std::lock_guard<std::mutex> lock(state_->mutex);
  state_->server_info.Add({{"version", version}, {"libtorch", libtorch_version}, {"device", device}}).Set(1);
}

void Metrics::SetActiveModel(const std::string& model_id) {
  std::lock_guard<std::mutex> lock(state_->mutex);
  for (auto& [id, gauge] : state_->active_model_gauges) gauge->Set(0);
  if (!model_id.empty()) {
    auto& gauge = state_->active_model.Add({{"model_id", model_id}});
    gauge.Set(1);
    state_->active_model_gauges[model_id] = &gauge;
  }
  state_->model_active.Set(model_id.empty() ? 0 : 1);
}

std::string Metrics::Scrape() const {
  auto families = state_->registry->Collect();
  for (auto& family : state_->process->Collect()) families.push_back(std::move(family));
  return prometheus::TextSerializer().Serialize(families);
}

}  // namespace facet::server
