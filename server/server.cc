#include "server/server.h"

#include "core/device.h"

#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/health_check_service_interface.h>
#include <grpcpp/server.h>
#include <grpcpp/server_builder.h>
#include <spdlog/spdlog.h>

#include <filesystem>

namespace facet::server {

namespace fs = std::filesystem;

FacetServer::FacetServer(const ServerOptions& options) : options_(options) {
  fs::create_directories(options.state_dir);
  metrics_ = std::make_unique<Metrics>(options.metrics_address);
  store_ = std::make_unique<JobStore>((fs::path(options.state_dir) / "facet.db").string());
  data_root_ = std::make_unique<DataRoot>(options.data_root);
  ConfigureThreads(options.threads);

  PredictorOptions predictor_options;
  predictor_options.device = options.device;
  predictor_options.max_batch_size = options.batching.max_batch_size;
  predictor_options.flip_average = options.flip_average;
  models_ = std::make_unique<ModelRegistry>(
      *store_, (fs::path(options.state_dir) / "models").string(), predictor_options,
      [this](const std::string& id) {
        metrics_->SetActiveModel(id);
        if (server_) {
          server_->GetHealthCheckService()->SetServingStatus("facet.v1.InferenceService", !id.empty());
        }
      });

  JobManagerOptions job_options;
  job_options.state_dir = options.state_dir;
  job_options.device = options.device;
  job_options.threads = options.threads;
  job_options.concurrent_jobs = options.concurrent_jobs;
  jobs_ = std::make_unique<JobManager>(job_options, *store_, *data_root_, *models_, *metrics_);
  batcher_ = std::make_unique<DynamicBatcher>(options.batching, metrics_.get());
  if (!options.face_cascade.empty()) {
    try {
      detector_ = std::make_unique<FaceDetector>(options.face_cascade);
    } catch (const std::exception& e) {
      spdlog::warn("face detection is off: {}", e.what());
    }
  }

  training_service_ = std::make_unique<TrainingServiceImpl>(*jobs_);
  model_service_ = std::make_unique<ModelServiceImpl>(*models_, *data_root_);
  inference_service_ =
      std::make_unique<InferenceServiceImpl>(*models_, *batcher_, detector_.get(), *metrics_, options.limits);

  // Restore the active model before serving, so that a restarted server never answers "no model" in between.
  models_->RestoreActive();

  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  builder.AddListeningPort(options.listen_address, grpc::InsecureServerCredentials(), &grpc_port_);
  builder.SetMaxReceiveMessageSize(options.max_message_bytes);
  builder.SetMaxSendMessageSize(options.max_message_bytes);
  builder.RegisterService(training_service_.get());
  builder.RegisterService(model_service_.get());
  builder.RegisterService(inference_service_.get());
  server_ = builder.BuildAndStart();
  if (!server_ || grpc_port_ == 0) {
    throw std::runtime_error("cannot listen on '" + options.listen_address + "' (in use, or not a valid address)");
  }
  server_->GetHealthCheckService()->SetServingStatus("facet.v1.TrainingService", true);
  server_->GetHealthCheckService()->SetServingStatus("facet.v1.ModelService", true);
  server_->GetHealthCheckService()->SetServingStatus("facet.v1.InferenceService", models_->Active() != nullptr);
  jobs_->Start();
  spdlog::info("facet-server listening on {} (port {}), metrics on {}, data root {}, state {}, device {}",
               options.listen_address, grpc_port_,
               options.metrics_address.empty() ? "(off)" : "http://" + options.metrics_address + "/metrics",
               data_root_->path(), options.state_dir, ResolveDevice(options.device).str());
}

FacetServer::~FacetServer() { Shutdown(std::chrono::seconds(5)); }

void FacetServer::Wait() { server_->Wait(); }

void FacetServer::Shutdown(std::chrono::milliseconds grace) {
  if (shut_down_) return;
  shut_down_ = true;
  spdlog::info("shutting down: finishing in-flight requests (up to {} ms)", grace.count());
  server_->Shutdown(std::chrono::system_clock::now() + grace);
  jobs_.reset();      // interrupts a running job between two steps; it stays RUNNING for the next start
  batcher_.reset();   // answers anything still queued
  spdlog::info("stopped");
}

}  // namespace facet::server
