#include "server/services.h"

#include "client/status_code_name.h"
#include "core/data/image_io.h"
#include "core/labels.h"
#include "server/status.h"

#include <spdlog/spdlog.h>

#include <atomic>
#include <deque>
#include <fstream>
#include <optional>

namespace facet::server {
namespace {

// Throws UNAUTHENTICATED / PERMISSION_DENIED unless the caller may act as `needed`; auth off: everyone may.
void Authorize(const TokenAuthenticator* auth, const grpc::CallbackServerContext& context, Role needed) {
  if (auth) auth->Authorize(context, needed);
}

// Checks the caller's role, runs `body` and finishes the default reactor with OK or the error's status, which is
// logged with its cause.
template <typename Body>
grpc::ServerUnaryReactor* Unary(const char* method, grpc::CallbackServerContext* context,
                                const TokenAuthenticator* auth, Role needed, Body&& body) {
  auto* reactor = context->DefaultReactor();
  try {
    Authorize(auth, *context, needed);
    body();
    reactor->Finish(grpc::Status::OK);
  } catch (...) {
    const grpc::Status status = CurrentExceptionToStatus();
    if (status.error_code() == grpc::StatusCode::INTERNAL) {
      spdlog::error("{} from {}: {}", method, context->peer(), status.error_message());
    } else {
      spdlog::warn("{} from {}: code {}: {}", method, context->peer(), static_cast<int>(status.error_code()),
                   status.error_message());
    }
    reactor->Finish(status);
  }
  return reactor;
}

// A server stream that fails before it starts (e.g. a caller without the role to watch).
template <typename Message = v1::JobEvent>
class FailedWrite final : public grpc::ServerWriteReactor<Message> {
 public:
  explicit FailedWrite(const grpc::Status& status) { this->Finish(status); }
  void OnDone() override { delete this; }
};

// Streams a job's events to one client. Events queue while a write is in flight; progress events are dropped
// when a slow client lets more than kMaxQueued pile up (snapshots and epochs are always kept).
class JobWatcher final : public grpc::ServerWriteReactor<v1::JobEvent> {
 public:
  JobWatcher(JobManager& jobs, std::string id) : jobs_(jobs), id_(std::move(id)) {
    try {
      token_ = jobs_.Subscribe(id_, [this](const v1::JobEvent& event, bool last) { Push(event, last); });
    } catch (...) {
      std::lock_guard<std::mutex> lock(mutex_);
      FinishLocked(CurrentExceptionToStatus());
    }
  }
  void OnWriteDone(bool ok) override {
    std::lock_guard<std::mutex> lock(mutex_);
    writing_ = false;
    if (!ok) {  // the call was cancelled (client gone, or server shutdown): finish so that OnDone follows
      FinishLocked(grpc::Status::CANCELLED);
      return;
    }
    WriteNextLocked();
  }
  void OnCancel() override {
    std::lock_guard<std::mutex> lock(mutex_);
    finishing_ = true;
    if (!writing_) FinishLocked(grpc::Status::CANCELLED);
  }
  void OnDone() override {
    if (token_) jobs_.Unsubscribe(id_, token_);
    delete this;
  }

 private:
  static constexpr size_t kMaxQueued = 256;
  void Push(const v1::JobEvent& event, bool last) {
    std::lock_guard<std::mutex> lock(mutex_);
    if (finishing_) return;
    if (event.has_progress() && queue_.size() >= kMaxQueued) return;
    queue_.push_back(event);
    finishing_ = last;
    if (last && event.has_snapshot() && !IsFinal(event.snapshot().state())) {
      // The stream ends before the job does: the server is stopping. Clients should watch again after a restart.
      end_status_ = grpc::Status(grpc::StatusCode::UNAVAILABLE,
                                 "the server is shutting down; job " + id_ + " resumes when it restarts");
    }
    WriteNextLocked();
  }
  static bool IsFinal(v1::JobState s) {
    return s == v1::JOB_STATE_SUCCEEDED || s == v1::JOB_STATE_FAILED || s == v1::JOB_STATE_CANCELLED;
  }
  void FinishLocked(const grpc::Status& status) {
    if (finished_) return;
    finished_ = true;
    Finish(status);
  }
  void WriteNextLocked() {
    if (writing_ || finished_) return;
    if (queue_.empty()) {
      if (finishing_) FinishLocked(end_status_);
      return;
    }
    current_ = std::move(queue_.front());
    queue_.pop_front();
    writing_ = true;
    StartWrite(&current_);
  }

  JobManager& jobs_;
  const std::string id_;
  uint64_t token_ = 0;
  std::mutex mutex_;
  std::deque<v1::JobEvent> queue_;
  v1::JobEvent current_;
  grpc::Status end_status_;  // OK unless the stream ends before the job
  bool writing_ = false, finishing_ = false, finished_ = false;
};

// What one Predict call waits for: every image's faces answered by the batcher.
class PredictCall {
 public:
  PredictCall(grpc::ServerUnaryReactor* reactor, v1::PredictResponse* response, Metrics& metrics)
      : reactor_(reactor), response_(response), metrics_(metrics), start_(Clock::now()) {}

  // Registers `count` pending faces before any is handed to the batcher.
  void Expect(int count) { pending_ += count; }
  // Called once per face; the last one finishes the call.
  void Answer(int image, int face, const Prediction* p, grpc::StatusCode code, const std::string& error) {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      auto* result = response_->mutable_results(image);
      if (p) {
        auto* f = result->mutable_faces(face);
        f->set_age_years(p->age_years);
        f->set_gender(kGenderNames[p->gender]);
        f->set_ethnicity(kEthnicityNames[p->ethnicity]);
        for (float q : p->gender_probabilities) f->add_gender_probabilities(q);
        for (float q : p->ethnicity_probabilities) f->add_ethnicity_probabilities(q);
        if (p->age_interval_coverage > 0) {
          auto* interval = f->mutable_age_interval();
          interval->set_low_years(p->age_low_years);
          interval->set_high_years(p->age_high_years);
          interval->set_coverage(p->age_interval_coverage);
        }
      } else if (code == grpc::StatusCode::DEADLINE_EXCEEDED || code == grpc::StatusCode::UNAVAILABLE) {
        request_error_ = grpc::Status(code, error);  // the whole request failed, not this image
      } else if (result->error_code() == 0) {
        result->set_error_code(code);
        result->set_error_message(error);
      }
    }
    if (--pending_ == 0) Finish();
  }
  void Finish() {
    grpc::Status status;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      status = request_error_;
      for (const auto& result : response_->results()) {
        metrics_.RecordImage(result.error_code() == 0 ? "ok" : "error");
      }
    }
    metrics_.RecordPredict(status.error_code(), std::chrono::duration<double>(Clock::now() - start_).count());
    reactor_->Finish(status);
    delete this;
  }

 private:
  grpc::ServerUnaryReactor* const reactor_;
  v1::PredictResponse* const response_;
  Metrics& metrics_;
  const Clock::time_point start_;
  std::atomic<int> pending_{0};
  std::mutex mutex_;
  grpc::Status request_error_;
};

// Streams the active model to one client: at once, then after each activation. Only the newest pending model
// is kept while a write is in flight (a follower only cares about the latest).
class ActiveModelWatcher final : public grpc::ServerWriteReactor<v1::Model> {
 public:
  explicit ActiveModelWatcher(ModelRegistry& models) : models_(models) {
    token_ = models_.SubscribeActive([this](const v1::Model& model) { Push(model); });
  }
  void OnWriteDone(bool ok) override {
    std::lock_guard<std::mutex> lock(mutex_);
    writing_ = false;
    if (!ok) return FinishLocked(grpc::Status::CANCELLED);
    WriteNextLocked();
  }
  void OnCancel() override {
    std::lock_guard<std::mutex> lock(mutex_);
    if (!writing_) FinishLocked(grpc::Status::CANCELLED);
    cancelled_ = true;
  }
  void OnDone() override {
    models_.UnsubscribeActive(token_);
    delete this;
  }

 private:
  void Push(const v1::Model& model) {
    std::lock_guard<std::mutex> lock(mutex_);
    pending_ = model;
    WriteNextLocked();
  }
  void WriteNextLocked() {
    if (writing_ || finished_ || cancelled_ || !pending_) return;
    current_ = std::move(*pending_);
    pending_.reset();
    writing_ = true;
    StartWrite(&current_);
  }
  void FinishLocked(const grpc::Status& status) {
    if (finished_) return;
    finished_ = true;
    Finish(status);
  }
  ModelRegistry& models_;
  uint64_t token_ = 0;
  std::mutex mutex_;
  std::optional<v1::Model> pending_;
  v1::Model current_;
  bool writing_ = false, finished_ = false, cancelled_ = false;
};

// Streams a model file in chunks, reading the next while the previous is on the wire.
class ModelDownload final : public grpc::ServerWriteReactor<v1::ModelChunk> {
 public:
  static constexpr size_t kChunkBytes = 1 << 20;
  ModelDownload(const std::string& path, const std::string& sha256) : in_(path, std::ios::binary) {
    if (!in_) {
      Finish(grpc::Status(grpc::StatusCode::NOT_FOUND, "the model's file is missing: " + path));
      return;
    }
    in_.seekg(0, std::ios::end);
    chunk_.set_total_bytes(static_cast<int64_t>(in_.tellg()));
    in_.seekg(0);
    chunk_.set_sha256(sha256);
    WriteNext();
  }
  void OnWriteDone(bool ok) override {
    if (!ok) return Finish(grpc::Status::CANCELLED);
    chunk_.Clear();
    WriteNext();
  }
  void OnDone() override { delete this; }

 private:
  void WriteNext() {
    std::string data(kChunkBytes, '\0');
    in_.read(data.data(), static_cast<std::streamsize>(data.size()));
    data.resize(static_cast<size_t>(in_.gcount()));
    if (data.empty() && !first_) return Finish(grpc::Status::OK);
    first_ = false;
    chunk_.set_data(std::move(data));
    StartWrite(&chunk_);
  }
  std::ifstream in_;
  v1::ModelChunk chunk_;
  bool first_ = true;
};

}  // namespace

// ------------------------------------------------------------------------------------------------ training

grpc::ServerUnaryReactor* TrainingServiceImpl::StartTraining(grpc::CallbackServerContext* context,
                                                             const v1::StartTrainingRequest* request,
                                                             v1::Job* response) {
  return Unary("StartTraining", context, auth_, Role::kAdmin, [&] {
    if (!primary_.empty()) {
      throw StatusError(grpc::StatusCode::FAILED_PRECONDITION,
                        "this server is a Predict replica of " + primary_ + ": train on the primary");
    }
    *response = jobs_.Submit(request->config());
  });
}

grpc::ServerUnaryReactor* TrainingServiceImpl::GetJob(grpc::CallbackServerContext* context,
                                                      const v1::GetJobRequest* request, v1::Job* response) {
  return Unary("GetJob", context, auth_, Role::kRead, [&] { *response = jobs_.Get(request->id()); });
}

grpc::ServerUnaryReactor* TrainingServiceImpl::ListJobs(grpc::CallbackServerContext* context,
                                                        const v1::ListJobsRequest* request,
                                                        v1::ListJobsResponse* response) {
  return Unary("ListJobs", context, auth_, Role::kRead, [&] {
    std::string next;
    for (auto& job : jobs_.List(request->state(), request->page_size(), request->page_token(), &next)) {
      *response->add_jobs() = std::move(job);
    }
    response->set_next_page_token(next);
  });
}

grpc::ServerWriteReactor<v1::JobEvent>* TrainingServiceImpl::WatchJob(grpc::CallbackServerContext* context,
                                                                      const v1::WatchJobRequest* request) {
  try {
    Authorize(auth_, *context, Role::kRead);
  } catch (const StatusError& e) {
    spdlog::warn("WatchJob from {}: {}", context->peer(), e.what());
    return new FailedWrite<>(ToStatus(e));
  }
  return new JobWatcher(jobs_, request->id());
}

grpc::ServerUnaryReactor* TrainingServiceImpl::CancelJob(grpc::CallbackServerContext* context,
                                                         const v1::CancelJobRequest* request, v1::Job* response) {
  return Unary("CancelJob", context, auth_, Role::kAdmin, [&] { *response = jobs_.Cancel(request->id()); });
}

// -------------------------------------------------------------------------------------------------- models

grpc::ServerUnaryReactor* ModelServiceImpl::ListModels(grpc::CallbackServerContext* context,
                                                       const v1::ListModelsRequest*, v1::ListModelsResponse* response) {
  return Unary("ListModels", context, auth_, Role::kRead, [&] {
    for (auto& model : models_.List()) *response->add_models() = std::move(model);
  });
}

grpc::ServerUnaryReactor* ModelServiceImpl::GetModel(grpc::CallbackServerContext* context,
                                                     const v1::GetModelRequest* request, v1::Model* response) {
  return Unary("GetModel", context, auth_, Role::kRead, [&] { *response = models_.Get(request->id()); });
}

// Loading a model takes a moment of CPU; it runs on the gRPC thread, which is acceptable for a rare admin call.
grpc::ServerUnaryReactor* ModelServiceImpl::ActivateModel(grpc::CallbackServerContext* context,
                                                          const v1::ActivateModelRequest* request,
                                                          v1::Model* response) {
  return Unary("ActivateModel", context, auth_, Role::kAdmin, [&] {
    RefuseOnReplica("activate");
    *response = models_.Activate(request->id());
  });
}

void ModelServiceImpl::RefuseOnReplica(const char* what) const {
  if (primary_.empty()) return;
  throw StatusError(grpc::StatusCode::FAILED_PRECONDITION, std::string("this server is a Predict replica of ") +
                                                               primary_ + ": " + what + " models on the primary; "
                                                               "replicas follow its active model");
}

grpc::ServerWriteReactor<v1::Model>* ModelServiceImpl::WatchActiveModel(grpc::CallbackServerContext* context,
                                                                        const v1::WatchActiveModelRequest*) {
  try {
    Authorize(auth_, *context, Role::kRead);
  } catch (const StatusError& e) {
    spdlog::warn("WatchActiveModel from {}: {}", context->peer(), e.what());
    return new FailedWrite<v1::Model>(ToStatus(e));
  }
  return new ActiveModelWatcher(models_);
}

grpc::ServerWriteReactor<v1::ModelChunk>* ModelServiceImpl::DownloadModel(grpc::CallbackServerContext* context,
                                                                          const v1::DownloadModelRequest* request) {
  try {
    Authorize(auth_, *context, Role::kRead);
    const v1::Model model = models_.Get(request->id());
    return new ModelDownload(models_.PathFor(model.id()), model.sha256());
  } catch (const StatusError& e) {
    spdlog::warn("DownloadModel from {}: {}", context->peer(), e.what());
    return new FailedWrite<v1::ModelChunk>(ToStatus(e));
  }
}

grpc::ServerUnaryReactor* ModelServiceImpl::RegisterModel(grpc::CallbackServerContext* context,
                                                          const v1::RegisterModelRequest* request,
                                                          v1::Model* response) {
  return Unary("RegisterModel", context, auth_, Role::kAdmin, [&] {
    RefuseOnReplica("register");
    *response = models_.Register(data_root_.Resolve(request->path(), "path", PathKind::kFile), request->path());
  });
}

// ----------------------------------------------------------------------------------------------- inference

void CheckPredictRequest(const v1::PredictRequest& request, const InferenceLimits& limits) {
  if (request.images_size() == 0) throw StatusError(grpc::StatusCode::INVALID_ARGUMENT, "images: at least one is required");
  if (request.images_size() > limits.max_images_per_request) {
    throw StatusError(grpc::StatusCode::INVALID_ARGUMENT, "images: at most " +
                                                              std::to_string(limits.max_images_per_request) +
                                                              " per request, got " + std::to_string(request.images_size()));
  }
}

cv::Mat DecodeRequestImage(const std::string& bytes, const InferenceLimits& limits) {
  if (bytes.size() > limits.max_image_bytes) {
    throw StatusError(grpc::StatusCode::INVALID_ARGUMENT, "image is " + std::to_string(bytes.size()) +
                                                              " bytes; the limit is " +
                                                              std::to_string(limits.max_image_bytes));
  }
  return DecodeImage(bytes, limits.max_image_pixels);  // bombs are refused from the header, before any allocation
}

grpc::ServerUnaryReactor* InferenceServiceImpl::Predict(grpc::CallbackServerContext* context,
                                                        const v1::PredictRequest* request,
                                                        v1::PredictResponse* response) {
  auto* reactor = context->DefaultReactor();
  auto fail = [&](grpc::StatusCode code, const std::string& message) {
    spdlog::warn("Predict from {}: {}: {}", context->peer(), client::StatusCodeName(code), message);
    metrics_.RecordPredict(code, 0.0);
    reactor->Finish(grpc::Status(code, message));
    return reactor;
  };
  try {
    Authorize(auth_, *context, Role::kPredict);
  } catch (const StatusError& e) {
    return fail(e.code(), e.what());
  }
  try {
    CheckPredictRequest(*request, limits_);
  } catch (const StatusError& e) {
    return fail(e.code(), e.what());
  }
  if (request->detect_faces() && !detector_) {
    return fail(grpc::StatusCode::FAILED_PRECONDITION, "detect_faces: no face cascade is loaded on this server");
  }
  const auto model = models_.Active();
  if (!model) return fail(grpc::StatusCode::FAILED_PRECONDITION, "no model is active (ActivateModel first)");
  response->set_model_id(model->id);

  const auto deadline = context->deadline() == std::chrono::system_clock::time_point::max()
                            ? Clock::time_point::max()
                            : Clock::now() + (context->deadline() - std::chrono::system_clock::now());
  auto* call = new PredictCall(reactor, response, metrics_);
  std::vector<BatchItem> items;
  std::vector<std::pair<int, int>> item_slots;  // (image, face) of each item
  for (int i = 0; i < request->images_size(); ++i) {
    auto* result = response->add_results();
    const std::string& bytes = request->images(i);
    try {
      const cv::Mat image = DecodeRequestImage(bytes, limits_);
      std::vector<cv::Mat> crops;
      if (request->detect_faces()) {
        for (const auto& face : detector_->Detect(image)) {
          auto* f = result->add_faces();
          f->mutable_box()->set_x(face.box.x);
          f->mutable_box()->set_y(face.box.y);
          f->mutable_box()->set_width(face.box.width);
          f->mutable_box()->set_height(face.box.height);
          crops.push_back(face.crop);
        }
      } else {
        result->add_faces();
        crops.push_back(image);
      }
      for (size_t f = 0; f < crops.size(); ++f) {
        items.push_back(BatchItem{PreprocessImage(ViewOf(crops[f]), model->predictor->image_size()), model, deadline,
                                  nullptr});
        item_slots.emplace_back(i, static_cast<int>(f));
      }
    } catch (...) {  // one image's failure is its result's, coded like any other error (out of memory included)
      const grpc::Status status = CurrentExceptionToStatus();
      result->set_error_code(status.error_code());
      result->set_error_message(status.error_message());
      spdlog::warn("Predict from {}: image {}: {}", context->peer(), i, status.error_message());
    }
  }
  if (items.empty()) {  // nothing to compute: every image failed or had no face
    call->Finish();
    return reactor;
  }
  call->Expect(static_cast<int>(items.size()));
  for (size_t k = 0; k < items.size(); ++k) {
    const auto [image, face] = item_slots[k];
    items[k].done = [call, image = image, face = face](const Prediction* p, grpc::StatusCode code,
                                                        const std::string& error) {
      call->Answer(image, face, p, code, error);
    };
  }
  if (!batcher_.Enqueue(std::move(items))) {
    delete call;
    response->Clear();
    return fail(grpc::StatusCode::RESOURCE_EXHAUSTED, "the inference queue is full; retry with backoff");
  }
  return reactor;
}

}  // namespace facet::server
