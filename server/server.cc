#include "server/server.h"

#include "server/tls_material.h"

#include "core/util/device.h"
#include "facet_version.h"

#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/health_check_service_interface.h>
#include <grpcpp/server.h>
#include <grpcpp/server_builder.h>
#include <spdlog/spdlog.h>
#include <torch/version.h>

#include <grpcpp/security/server_credentials.h>

#include <filesystem>

namespace facet::server {

namespace fs = std::filesystem;

namespace {

bool IsLoopbackHost(const std::string& host) {
  return host == "localhost" || host == "[::1]" || host.rfind("127.", 0) == 0;
}

}  // namespace

std::string EffectiveListenAddress(const ServerOptions& options) {
  const std::string& address = options.listen_address;
  if (!options.auth_token_file.empty() || options.allow_unauthenticated_remote) return address;
  if (address.rfind("unix:", 0) == 0) return address;  // a socket file: local by nature
  const auto colon = address.rfind(':');
  const std::string host = colon == std::string::npos ? address : address.substr(0, colon);
  if (IsLoopbackHost(host)) return address;
  const std::string port = colon == std::string::npos ? "0" : address.substr(colon + 1);
  return (host.find(':') != std::string::npos || host.rfind('[', 0) == 0 ? "[::1]:" : "127.0.0.1:") + port;
}

FacetServer::FacetServer(const ServerOptions& options) : options_(options) {
  fs::create_directories(options.state_dir);
  const std::string device = ResolveDevice(options.device).str();  // what `auto` means here: metric and log
  metrics_ = std::make_unique<Metrics>(options.metrics_address);
  metrics_->SetServerInfo(FACET_VERSION, TORCH_VERSION, device);
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
  job_options.rendezvous_address = options.rendezvous_address;
  job_options.rendezvous_timeout_s = options.rendezvous_timeout_s;
  job_options.collective_timeout_s = options.collective_timeout_s;
  jobs_ = std::make_unique<JobManager>(job_options, *store_, *data_root_, *models_, *metrics_);
  batcher_ = std::make_unique<DynamicBatcher>(options.batching, metrics_.get());
  if (!options.face_cascade.empty()) {
    try {
      detector_ = std::make_unique<FaceDetector>(options.face_cascade);
    } catch (const std::exception& e) {
      spdlog::warn("face detection is off: {}", e.what());
    }
  }

  if (!options.auth_token_file.empty()) {
    auth_ = std::make_unique<TokenAuthenticator>(options.auth_token_file);
  }
  const std::string listen_address = EffectiveListenAddress(options);
  if (listen_address != options.listen_address) {
    spdlog::warn("no --auth-tokens file: listening on {} instead of {}, so that only this host can call the API "
                 "(configure tokens, or pass --allow-unauthenticated-remote to accept anyone)",
                 listen_address, options.listen_address);
  } else if (!auth_) {
    spdlog::warn("authentication is off: anyone who reaches {} may train, activate and predict", listen_address);
  }
  std::shared_ptr<grpc::ServerCredentials> credentials;
  if (options.tls_cert_file.empty() && options.tls_key_file.empty()) {
    if (!options.tls_client_ca_file.empty()) throw std::runtime_error("--tls-client-ca needs --tls-cert and --tls-key");
    credentials = grpc::InsecureServerCredentials();
    fs::remove_all(fs::path(options.state_dir) / "tls");  // a key published by an earlier start with TLS
  } else {
    tls_ = std::make_unique<TlsMaterial>(
        TlsFiles{options.tls_cert_file, options.tls_key_file, options.tls_client_ca_file},
        (fs::path(options.state_dir) / "tls").string());
    credentials = tls_->Credentials();
  }

  training_service_ = std::make_unique<TrainingServiceImpl>(*jobs_, auth_.get(), options.follow);
  model_service_ = std::make_unique<ModelServiceImpl>(*models_, *data_root_, auth_.get(), options.follow);
  inference_service_ = std::make_unique<InferenceServiceImpl>(*models_, *batcher_, detector_.get(), *metrics_,
                                                              options.limits, auth_.get());

  // Restore the active model before serving, so that a restarted server never answers "no model" in between.
  models_->RestoreActive();

  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  builder.AddListeningPort(listen_address, credentials, &grpc_port_);
  builder.SetMaxReceiveMessageSize(options.max_message_bytes);
  builder.SetMaxSendMessageSize(options.max_message_bytes);
  builder.RegisterService(training_service_.get());
  builder.RegisterService(model_service_.get());
  builder.RegisterService(inference_service_.get());
  server_ = builder.BuildAndStart();
  if (!server_ || grpc_port_ == 0) {
    throw std::runtime_error("cannot listen on '" + listen_address + "' (in use, or not a valid address)");
  }
  server_->GetHealthCheckService()->SetServingStatus("facet.v1.TrainingService", true);
  server_->GetHealthCheckService()->SetServingStatus("facet.v1.ModelService", true);
  server_->GetHealthCheckService()->SetServingStatus("facet.v1.InferenceService", models_->Active() != nullptr);
  jobs_->Start();
  if (!options.follow.empty()) {
    FollowerOptions follower_options;
    follower_options.primary = options.follow_connection;
    follower_options.primary.address = options.follow;
    follower_options.download_dir = (fs::path(options.state_dir) / "downloads").string();
    follower_ = std::make_unique<ModelFollower>(follower_options, *models_);
    spdlog::info("Predict replica: following the active model of primary {}", options.follow);
  }
  spdlog::info("facet-server listening on {} (port {}, {}{}), metrics on {}, data root {}, state {}, device {}",
               listen_address, grpc_port_, options.tls_cert_file.empty() ? "plaintext" : "TLS",
               auth_ ? ", " + std::to_string(auth_->size()) + " tokens" : "",
               options.metrics_address.empty() ? "(off)" : "http://" + options.metrics_address + "/metrics",
               data_root_->path(), options.state_dir, device);
}

FacetServer::~FacetServer() { Shutdown(std::chrono::seconds(5)); }

void FacetServer::Wait() { server_->Wait(); }

void FacetServer::ReloadCredentials() {
  if (!auth_ && !tls_) {
    spdlog::warn("asked to reload credentials, but the server runs without --auth-tokens and without TLS: "
                 "nothing to reload");
    return;
  }
  if (auth_) {
    try {
      const size_t count = auth_->Reload();
      spdlog::info("token file '{}' reloaded: {} tokens", auth_->path(), count);
    } catch (const std::exception& e) {
      spdlog::error("token file not reloaded, the {} tokens in use stay: {}", auth_->size(), e.what());
    }
  }
  if (tls_) {
    try {
      tls_->Reload();
      spdlog::info("TLS certificate '{}' and key '{}'{} reloaded: new connections use them", tls_->files().cert,
                   tls_->files().key,
                   tls_->files().client_ca.empty() ? "" : " and client CA '" + tls_->files().client_ca + "'");
    } catch (const std::exception& e) {
      spdlog::error("TLS files not reloaded, the certificate in use stays: {}", e.what());
    }
  }
}

void FacetServer::Shutdown(std::chrono::milliseconds grace) {
  if (shut_down_) return;
  shut_down_ = true;
  spdlog::info("shutting down: finishing in-flight requests (up to {} ms), checkpointing running jobs",
               grace.count());
  follower_.reset();  // no model switch during shutdown
  jobs_->Stop();      // running jobs checkpoint their current step meanwhile, and stay RUNNING for the next start
  server_->Shutdown(std::chrono::system_clock::now() + grace);  // no new calls; in-flight Predicts finish
  jobs_.reset();      // waits for those checkpoints
  batcher_.reset();   // answers anything still queued
  spdlog::info("stopped");
}

}  // namespace facet::server
