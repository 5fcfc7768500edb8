// Trained and registered models, and the one Predict serves. Thread-safe: Predict reads the active model while
// jobs register and operators activate. Errors are StatusError with the gRPC code the caller gets (NOT_FOUND for an
// unknown id, INVALID_ARGUMENT for a file that is no facet export, FAILED_PRECONDITION for a digest that differs).
#pragma once

#include "core/infer/predictor.h"
#include "server/job_store.h"

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

namespace facet::server {

// What a Predict request holds while it is served: the model cannot be unloaded under it.
struct ServingModel {
  std::string id;
  std::unique_ptr<Predictor> predictor;
};

class ModelRegistry {
 public:
  // `on_active_change` is called (outside any lock) with the new active model id after each activation.
  ModelRegistry(JobStore& store, std::string models_dir, PredictorOptions predictor_options,
                std::function<void(const std::string&)> on_active_change);

  // Where a job's export should be written before AddTrained.
  std::string PathFor(const std::string& model_id) const;
  static std::string NewModelId();

  v1::Model AddTrained(const std::string& model_id, const v1::Job& job);
  // Validates the file by loading it (INVALID_ARGUMENT on anything that is not a facet export), then copies it in.
  v1::Model Register(const std::string& source_path, const std::string& shown_source);

  std::vector<v1::Model> List();
  v1::Model Get(const std::string& id);  // NOT_FOUND

  // Loads the model first; only a fully loaded model is swapped in, so a bad file leaves the old one serving.
  v1::Model Activate(const std::string& id);
  // Re-activates the model the store marks active (at start-up). Logs and leaves none active on failure.
  void RestoreActive();

  std::shared_ptr<const ServingModel> Active() const;

  // Replicas: takes a model file downloaded from the primary, under the primary's id and metadata. Refuses
  // (FAILED_PRECONDITION) a file whose SHA-256 is not the recorded one or that does not load; moves it in.
  v1::Model AddReplica(const v1::Model& primary_model, const std::string& downloaded_path);
  // Whether `id` is here with this SHA-256 (a replica that restarts need not download it again).
  bool Has(const std::string& id, const std::string& sha256);

  // Calls `sink` with the active model now (when there is one) and after every activation, until
  // UnsubscribeActive. The sink runs under the registry's subscriber lock: it must not call back into it.
  uint64_t SubscribeActive(std::function<void(const v1::Model&)> sink);
  void UnsubscribeActive(uint64_t token);

 private:
  JobStore& store_;
  const std::string models_dir_;
  const PredictorOptions predictor_options_;
  const std::function<void(const std::string&)> on_active_change_;
  std::mutex activate_mutex_;  // one activation at a time
  mutable std::mutex active_mutex_;
  std::shared_ptr<const ServingModel> active_;  // guarded by active_mutex_
  std::mutex subscribers_mutex_;
  std::map<uint64_t, std::function<void(const v1::Model&)>> subscribers_;  // guarded by subscribers_mutex_
  uint64_t next_token_ = 1;
};

}  // namespace facet::server
