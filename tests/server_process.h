// Runs the real facet-server binary for integration tests: free loopback ports, a temporary state dir, logs to a
// file in a temporary folder of its own (removed with it), ready once its health service answers.
#pragma once

#include "client/facet_client.h"
#include "tests/test_util.h"

#include <sys/types.h>

#include <memory>
#include <string>
#include <vector>

namespace facet::testing {

int FreeLoopbackPort();

// A tiny, fast recipe on the folder "faces" of the data root: the point of these tests is the service, not accuracy.
v1::TrainingConfig TinyJob(int frozen_epochs = 1, int unfrozen_epochs = 1);

struct ServerProcessOptions {
  std::vector<std::string> extra_flags;
  client::ConnectionOptions connection;  // how client() connects; the address is filled in
  long file_size_limit_bytes = 0;        // RLIMIT_FSIZE of the server (0: none): writes past it fail as on a full disk
};

class ServerProcess {
 public:
  // Starts facet-server with --data-root data_root and --state-dir state_dir; waits until it is SERVING.
  ServerProcess(const std::string& data_root, const std::string& state_dir, ServerProcessOptions options);
  ServerProcess(const std::string& data_root, const std::string& state_dir, std::vector<std::string> extra_flags = {})
      : ServerProcess(data_root, state_dir, WithFlags(std::move(extra_flags))) {}
  ~ServerProcess();  // SIGKILLs a server still running

  std::string address() const { return "127.0.0.1:" + std::to_string(grpc_port_); }
  std::string metrics_address() const { return "127.0.0.1:" + std::to_string(metrics_port_); }
  client::FacetClient& client() { return *client_; }
  const client::ConnectionOptions& connection() const { return connection_; }
  std::string Log() const;

  int Terminate();  // SIGTERM, then the exit status (or -signal)
  void Kill();      // SIGKILL, as a crash would
  void Signal(int signal);  // sends it without waiting
  int Wait();       // the exit status (or -signal) once the server has exited

 private:
  static ServerProcessOptions WithFlags(std::vector<std::string> flags) {
    ServerProcessOptions options;
    options.extra_flags = std::move(flags);
    return options;
  }
  pid_t pid_ = -1;
  int grpc_port_ = 0, metrics_port_ = 0;
  TempDir log_dir_;  // the server's log lives and goes with this object, whatever the caller's state dir
  std::string log_path_;
  client::ConnectionOptions connection_;
  std::unique_ptr<client::FacetClient> client_;
};

// The status code of the RpcError that `call` threw, or OK when it returned normally.
grpc::StatusCode CodeOf(const std::function<void()>& call);

// GET http://address/path over a plain socket; the body, or "" on failure.
std::string HttpGet(const std::string& address, const std::string& path);

}  // namespace facet::testing
