// A thin client over facet's gRPC API: one channel, a fresh context and deadline per call, errors as exceptions.
// Thread-safe: one FacetClient may be shared by threads (its channel and stub are). Every call throws RpcError
// (the status and the method) on anything but OK.
#pragma once

#include "client/call_canceller.h"
#include "client/status_code_name.h"
#include "facet/v1/facet.grpc.pb.h"

#include <grpcpp/grpcpp.h>

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>

namespace facet::client {

// A failed call: the gRPC status and where it came from.
class RpcError : public std::runtime_error {
 public:
  RpcError(const std::string& method, const grpc::Status& status);
  grpc::StatusCode code() const { return code_; }

 private:
  grpc::StatusCode code_;
};

// How to reach and authenticate to a server. File fields name PEM files; empty ones are unused.
struct ConnectionOptions {
  std::string address = "localhost:7070";
  std::chrono::milliseconds timeout{30000};  // per call (WatchJob has none)
  std::string token;            // sent as `authorization: Bearer TOKEN`
  bool tls = false;             // implied by any tls_* file
  std::string tls_ca_file;      // CA that signed the server's certificate (default: the system's roots)
  std::string tls_cert_file;    // client certificate, for servers that require mutual TLS
  std::string tls_key_file;
  std::string tls_server_name;  // overrides the name checked against the server's certificate
  // gRPC load-balancing policy, e.g. "round_robin": spread calls over every address the target resolves to
  // (`dns:///replicas.example:7070`, or `ipv4:10.0.0.1:7070,10.0.0.2:7070`). Empty: gRPC's pick_first.
  std::string load_balancing;
};

class FacetClient {
 public:
  explicit FacetClient(const ConnectionOptions& options);  // throws std::runtime_error on unreadable PEM files
  FacetClient(const std::string& address, std::chrono::milliseconds timeout);

  v1::Job StartTraining(const v1::TrainingConfig& config);
  v1::Job GetJob(const std::string& id);
  v1::ListJobsResponse ListJobs(v1::JobState state, int page_size, const std::string& page_token);
  v1::Job CancelJob(const std::string& id);
  // Calls on_event for every event until the job ends (returns OK) or the stream fails (throws RpcError).
  void WatchJob(const std::string& id, const std::function<void(const v1::JobEvent&)>& on_event);

  v1::ListModelsResponse ListModels();
  v1::Model GetModel(const std::string& id);
  v1::Model ActivateModel(const std::string& id);
  v1::Model RegisterModel(const std::string& path);
  // Calls on_model with the active model, then with each newly activated one, until the stream fails (throws
  // RpcError) or `canceller` (when given) cancels it from another thread; returns quietly when it was cancelled.
  void WatchActiveModel(const std::function<void(const v1::Model&)>& on_model, CallCanceller* canceller = nullptr);
  // Writes model `id`'s file to `path` (at most max_bytes); returns the SHA-256 the server announced.
  std::string DownloadModel(const std::string& id, const std::string& path, int64_t max_bytes);

  v1::PredictResponse Predict(const v1::PredictRequest& request);

  // "SERVING", "NOT_SERVING", ... for a service name ("" = the whole server).
  std::string Health(const std::string& service);

 private:
  // A context with the token and a deadline `timeout` from now (none: for streams that last).
  std::unique_ptr<grpc::ClientContext> Context(std::optional<std::chrono::milliseconds> timeout) const;
  std::unique_ptr<grpc::ClientContext> Context() const { return Context(timeout_); }
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::TrainingService::Stub> training_;
  std::unique_ptr<v1::ModelService::Stub> models_;
  std::unique_ptr<v1::InferenceService::Stub> inference_;
  std::chrono::milliseconds timeout_;
  std::string authorization_;  // "Bearer TOKEN", or empty
};

}  // namespace facet::client
