// facet-server assembled: store, registry, job manager, batcher, metrics and the gRPC services.
#pragma once

#include "server/batcher.h"
#include "server/model_follower.h"
#include "server/services.h"

#include <chrono>
#include <memory>
#include <string>

namespace grpc {
class Server;
}

namespace facet::server {

class TlsMaterial;

struct ServerOptions {
  std::string listen_address = "127.0.0.1:7070";
  std::string metrics_address = "127.0.0.1:9464";  // empty: no metrics endpoint
  std::string data_root = ".";
  std::string state_dir = "facet-state";
  std::string device = "auto";
  int threads = 0;               // LibTorch intra-op threads (0: all cores)
  int concurrent_jobs = 1;
  std::string rendezvous_address = "127.0.0.1";  // data-parallel jobs: where rank 0's c10d store listens
  int rendezvous_timeout_s = 300;
  int collective_timeout_s = 300;
  // Predict replica: follow this primary's active model (download, verify, activate) and serve it; training and
  // model administration are refused here. Empty: a primary.
  std::string follow;
  client::ConnectionOptions follow_connection;  // token and TLS for reaching the primary (address: `follow`)
  BatcherOptions batching;
  InferenceLimits limits;
  int max_message_bytes = 64 << 20;
  std::string face_cascade = FaceDetector::kDefaultCascade;  // empty: face detection off
  bool flip_average = false;     // test-time flip averaging in Predict

  // Security (docs/security.md). No token file: no authentication, so the server listens on loopback only,
  // unless `allow_unauthenticated_remote`.
  std::string auth_token_file;
  bool allow_unauthenticated_remote = false;
  std::string tls_cert_file;       // PEM; with tls_key_file, gRPC is served over TLS only
  std::string tls_key_file;
  std::string tls_client_ca_file;  // PEM; when set, clients must present a certificate it signed (mTLS)
};

// The address the server will really bind: `listen` itself, or its loopback equivalent when nothing authenticates
// callers and remote callers were not explicitly allowed.
std::string EffectiveListenAddress(const ServerOptions& options);

class FacetServer {
 public:
  // Opens the state, restores the active model, binds the ports and starts serving.
  // Throws std::runtime_error with the cause when anything cannot start.
  explicit FacetServer(const ServerOptions& options);
  ~FacetServer();

  int grpc_port() const { return grpc_port_; }
  // Blocks until Shutdown.
  void Wait();
  // Stops accepting, lets in-flight calls finish within `grace`, interrupts a running job (it resumes on the
  // next start) and stops the workers.
  void Shutdown(std::chrono::milliseconds grace);
  // Reads the token file and the TLS files again (facet-server does on SIGHUP), so that tokens are added and
  // revoked, and certificates renewed, without a restart. A bad file is logged and what is in use stays.
  void ReloadCredentials();

 private:
  ServerOptions options_;
  std::unique_ptr<Metrics> metrics_;
  std::unique_ptr<JobStore> store_;
  std::unique_ptr<DataRoot> data_root_;
  std::unique_ptr<ModelRegistry> models_;
  std::unique_ptr<JobManager> jobs_;
  std::unique_ptr<DynamicBatcher> batcher_;
  std::unique_ptr<FaceDetector> detector_;
  std::unique_ptr<TokenAuthenticator> auth_;
  std::unique_ptr<TlsMaterial> tls_;
  std::unique_ptr<TrainingServiceImpl> training_service_;
  std::unique_ptr<ModelServiceImpl> model_service_;
  std::unique_ptr<InferenceServiceImpl> inference_service_;
  std::unique_ptr<grpc::Server> server_;
  std::unique_ptr<ModelFollower> follower_;
  int grpc_port_ = 0;
  bool shut_down_ = false;
};

}  // namespace facet::server
