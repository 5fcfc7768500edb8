#include "server/model_registry.h"

#include "core/util/file_util.h"
#include "core/util/sha256.h"
#include "server/proto_convert.h"
#include "server/status.h"

#include <google/protobuf/util/time_util.h>
#include <spdlog/spdlog.h>

#include <filesystem>
#include <random>

namespace facet::server {

namespace fs = std::filesystem;

ModelRegistry::ModelRegistry(JobStore& store, std::string models_dir, PredictorOptions predictor_options,
                             std::function<void(const std::string&)> on_active_change)
    : store_(store),
      models_dir_(std::move(models_dir)),
      predictor_options_(predictor_options),
      on_active_change_(std::move(on_active_change)) {
  fs::create_directories(models_dir_);
}

std::string ModelRegistry::NewModelId() {
  static thread_local std::mt19937_64 rng(std::random_device{}());
  char id[32];
  std::snprintf(id, sizeof(id), "model-%012llx", static_cast<unsigned long long>(rng() & 0xFFFFFFFFFFFFULL));
  return id;
}

std::string ModelRegistry::PathFor(const std::string& model_id) const {
  return (fs::path(models_dir_) / (model_id + ".pt")).string();
}

v1::Model ModelRegistry::AddTrained(const std::string& model_id, const v1::Job& job) {
  ExportedModelInfo info;
  LoadExportedModel(PathFor(model_id), c10::kCPU, &info);  // the export must load before it is listed
  v1::Model model;
  model.set_id(model_id);
  model.set_job_id(job.id());
  model.set_arch(ArchName(info.arch));
  model.set_base_width(info.base_width);
  model.set_image_size(info.image_size);
  model.set_sha256(Sha256HexOfFile(PathFor(model_id)));
  *model.mutable_metrics() = job.latest().validation();
  *model.mutable_calibration() = job.calibration();
  *model.mutable_config() = job.config();
  *model.mutable_created_at() = google::protobuf::util::TimeUtil::GetCurrentTime();
  store_.PutModel(model);
  return model;
}

v1::Model ModelRegistry::Register(const std::string& source_path, const std::string& shown_source) {
  v1::Model model;
  model.set_id(NewModelId());
  // Copy first, atomically, then validate the copy: what is checked is what will be served, and a crash leaves
  // no half-copied model behind.
  const std::vector<char> bytes = ReadFileBytes(source_path);
  const std::string_view view(bytes.data(), bytes.size());
  const std::string path = PathFor(model.id());
  WriteFileAtomically(path, view);
  ExportedModelInfo info;
  try {
    LoadExportedModel(path, c10::kCPU, &info);
  } catch (const std::exception& e) {
    fs::remove(path);
    throw StatusError(grpc::StatusCode::INVALID_ARGUMENT, std::string("path: not a facet model export: ") + e.what());
  }
  model.set_sha256(Sha256Hex(view));
  model.set_arch(ArchName(info.arch));
  model.set_base_width(info.base_width);
  model.set_image_size(info.image_size);
  *model.mutable_calibration() = ToProto(info.calibration);
  model.set_source(shown_source);
  *model.mutable_created_at() = google::protobuf::util::TimeUtil::GetCurrentTime();
  store_.PutModel(model);
  return model;
}

std::vector<v1::Model> ModelRegistry::List() { return store_.ListModels(); }

v1::Model ModelRegistry::Get(const std::string& id) {
  auto model = store_.GetModel(id);
  if (!model) throw StatusError(grpc::StatusCode::NOT_FOUND, "no model '" + id + "'");
  return *model;
}

v1::Model ModelRegistry::Activate(const std::string& id) {
  std::lock_guard<std::mutex> one_at_a_time(activate_mutex_);
  v1::Model model = Get(id);
  auto serving = std::make_shared<ServingModel>();
  serving->id = id;
  try {
    if (!model.sha256().empty()) {
      const std::string actual = Sha256HexOfFile(PathFor(id));
      if (actual != model.sha256()) {
        throw std::runtime_error("the file '" + PathFor(id) + "' has SHA-256 " + actual + ", not the recorded " +
                                 model.sha256() + " (corrupt or replaced)");
      }
    }
    serving->predictor = Predictor::FromExport(PathFor(id), predictor_options_);
  } catch (const std::exception& e) {
    throw StatusError(grpc::StatusCode::FAILED_PRECONDITION,
                      "model '" + id + "' cannot be loaded; the serving model is unchanged: " + e.what());
  }
  {
    std::lock_guard<std::mutex> lock(active_mutex_);
    active_ = std::move(serving);  // in-flight requests keep their own reference to the old model
  }
  store_.SetActiveModel(id);
  model.set_active(true);
  spdlog::info("model {} activated ({} {}px on {})", id, model.arch(), model.image_size(),
               Active()->predictor->device());
  if (on_active_change_) on_active_change_(id);
  {
    std::lock_guard<std::mutex> lock(subscribers_mutex_);
    for (auto& [token, sink] : subscribers_) sink(model);
  }
  return model;
}

uint64_t ModelRegistry::SubscribeActive(std::function<void(const v1::Model&)> sink) {
  std::lock_guard<std::mutex> lock(subscribers_mutex_);
  // Under the subscribers lock: an activation that follows is delivered after this snapshot, never before.
  if (const auto active = Active()) {
    v1::Model model = Get(active->id);
    model.set_active(true);
    sink(model);
  }
  const uint64_t token = next_token_++;
  subscribers_[token] = std::move(sink);
  return token;
}

void ModelRegistry::UnsubscribeActive(uint64_t token) {
  std::lock_guard<std::mutex> lock(subscribers_mutex_);
  subscribers_.erase(token);
}

bool ModelRegistry::Has(const std::string& id, const std::string& sha256) {
  const auto model = store_.GetModel(id);
  return model && model->sha256() == sha256 && fs::exists(PathFor(id));
}

v1::Model ModelRegistry::AddReplica(const v1::Model& primary_model, const std::string& downloaded_path) {
  const std::string& id = primary_model.id();
  if (id.empty() || id.find_first_of("/\\.") != std::string::npos) {
    throw StatusError(grpc::StatusCode::FAILED_PRECONDITION, "the primary sent a malformed model id '" + id + "'");
  }
  const std::string actual = Sha256HexOfFile(downloaded_path);
  if (actual != primary_model.sha256()) {
    throw StatusError(grpc::StatusCode::FAILED_PRECONDITION, "model " + id + " arrived with SHA-256 " + actual +
                                                                 ", not the primary's " + primary_model.sha256());
  }
  try {
    LoadExportedModel(downloaded_path, c10::kCPU);
  } catch (const std::exception& e) {
    throw StatusError(grpc::StatusCode::FAILED_PRECONDITION,
                      "model " + id + " from the primary is not a facet export: " + e.what());
  }
  fs::rename(downloaded_path, PathFor(id));
  v1::Model model = primary_model;
  model.set_active(false);
  store_.PutModel(model);
  return model;
}

void ModelRegistry::RestoreActive() {
  for (const auto& model : store_.ListModels()) {
    if (!model.active()) continue;
    try {
      Activate(model.id());
    } catch (const std::exception& e) {
      spdlog::error("could not restore the active model {}: {}", model.id(), e.what());
    }
    return;
  }
  if (on_active_change_) on_active_change_("");
}

std::shared_ptr<const ServingModel> ModelRegistry::Active() const {
  std::lock_guard<std::mutex> lock(active_mutex_);
  return active_;
}

}  // namespace facet::server
