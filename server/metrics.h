// The server's Prometheus metrics, served at /metrics on their own port. Thread-safe.
// prometheus-cpp stays inside metrics.cc.
#pragma once

#include "facet/v1/facet.pb.h"

#include <grpcpp/support/status_code_enum.h>

#include <memory>
#include <string>
#include <vector>

namespace facet::server {

class Metrics {
 public:
  // Starts the HTTP exposer on `address` (host:port); an empty address keeps the metrics in memory only.
  // Throws std::runtime_error when the port cannot be bound.
  explicit Metrics(const std::string& address);
  ~Metrics();

  // facet_server_info{version, libtorch, device} 1: what this process runs on ("cuda:0" when a GPU serves).
  void SetServerInfo(const std::string& version, const std::string& libtorch_version, const std::string& device);

  // Training.
  void SetJobCounts(const std::vector<std::pair<v1::JobState, int64_t>>& counts);
  void RecordEpoch(const std::string& job_id, const v1::EpochMetrics& epoch);
  void RecordProgress(const std::string& job_id, const v1::Progress& progress);

  // Serving.
  void RecordPredict(grpc::StatusCode code, double latency_seconds);  // labelled by the code's gRPC name
  void RecordImage(const std::string& outcome);  // "ok" or the image's error code name
  void RecordQueueTime(double seconds);
  void RecordBatch(int batch_size, double compute_seconds);
  void SetActiveModel(const std::string& model_id);  // "" when none

  // The text exposition, as /metrics serves it (tests use it without HTTP).
  std::string Scrape() const;

 private:
  struct State;
  std::unique_ptr<State> state_;
};

}  // namespace facet::server
