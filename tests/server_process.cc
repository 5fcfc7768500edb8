#include "tests/server_process.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <csignal>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <thread>

namespace facet::testing {

v1::TrainingConfig TinyJob(int frozen_epochs, int unfrozen_epochs) {
  v1::TrainingConfig c;
  c.set_data_dir("faces");
  c.set_arch("resnet18");
  c.set_base_width(8);
  c.set_image_size(32);
  c.set_batch_size(16);
  c.mutable_frozen()->set_epochs(frozen_epochs);
  c.mutable_unfrozen()->set_epochs(unfrozen_epochs);
  c.set_loader_workers(1);
  return c;
}

int FreeLoopbackPort() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) throw std::runtime_error("bind failed");
  socklen_t len = sizeof(addr);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  ::close(fd);
  return ntohs(addr.sin_port);
}

ServerProcess::ServerProcess(const std::string& data_root, const std::string& state_dir,
                             ServerProcessOptions options) {
  grpc_port_ = FreeLoopbackPort();
  metrics_port_ = FreeLoopbackPort();
  log_path_ = log_dir_ / "facet-server.log";
  std::vector<std::string> args = {FACET_SERVER_BINARY,
                                   "--listen=" + address(),
                                   "--metrics-listen=" + metrics_address(),
                                   "--data-root=" + data_root,
                                   "--state-dir=" + state_dir,
                                   "--device=cpu",
                                   "--threads=2",
                                   "--log-level=debug"};
  args.insert(args.end(), options.extra_flags.begin(), options.extra_flags.end());
  pid_ = ::fork();
  if (pid_ == 0) {
    if (options.file_size_limit_bytes > 0) {
      std::signal(SIGXFSZ, SIG_IGN);  // inherited through exec: writes past the limit fail with EFBIG
      rlimit limit{static_cast<rlim_t>(options.file_size_limit_bytes), static_cast<rlim_t>(options.file_size_limit_bytes)};
      ::setrlimit(RLIMIT_FSIZE, &limit);
    }
    const int log = ::open(log_path_.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    ::dup2(log, STDOUT_FILENO);
    ::dup2(log, STDERR_FILENO);
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    ::execv(argv[0], argv.data());
    std::perror("execv facet-server");
    ::_exit(127);
  }
  connection_ = options.connection;
  connection_.address = address();
  connection_.timeout = std::chrono::seconds(60);
  client_ = std::make_unique<client::FacetClient>(connection_);
  client::ConnectionOptions probe = connection_;
  probe.timeout = std::chrono::milliseconds(500);
  const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (std::chrono::steady_clock::now() < give_up) {
    int status = 0;
    if (::waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      throw std::runtime_error("facet-server exited during start-up:\n" + Log());
    }
    try {
      if (client::FacetClient(probe).Health("") == "SERVING") return;
    } catch (const std::exception&) {
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  Kill();
  throw std::runtime_error("facet-server did not become SERVING within 60 s:\n" + Log());
}

ServerProcess::~ServerProcess() {
  if (pid_ > 0) Kill();
}

std::string ServerProcess::Log() const {
  std::ifstream in(log_path_);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

int ServerProcess::Wait() {
  int status = 0;
  ::waitpid(pid_, &status, 0);
  pid_ = -1;
  return WIFEXITED(status) ? WEXITSTATUS(status) : -WTERMSIG(status);
}

int ServerProcess::Terminate() {
  if (pid_ <= 0) return -1;
  ::kill(pid_, SIGTERM);
  return Wait();
}

void ServerProcess::Signal(int signal) {
  if (pid_ > 0) ::kill(pid_, signal);
}

void ServerProcess::Kill() {
  if (pid_ <= 0) return;
  ::kill(pid_, SIGKILL);
  Wait();
}

grpc::StatusCode CodeOf(const std::function<void()>& call) {
  try {
    call();
  } catch (const client::RpcError& e) {
    return e.code();
  }
  return grpc::StatusCode::OK;
}

std::string HttpGet(const std::string& address, const std::string& path) {
  const auto colon = address.rfind(':');
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(std::stoi(address.substr(colon + 1))));
  ::inet_pton(AF_INET, address.substr(0, colon).c_str(), &addr.sin_addr);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    ::close(fd);
    return "";
  }
  const std::string request = "GET " + path + " HTTP/1.0\r\nHost: " + address + "\r\nConnection: close\r\n\r\n";
  ::send(fd, request.data(), request.size(), 0);
  std::string response;
  char buffer[8192];
  ssize_t n;
  while ((n = ::recv(fd, buffer, sizeof(buffer), 0)) > 0) response.append(buffer, static_cast<size_t>(n));
  ::close(fd);
  const auto body = response.find("\r\n\r\n");
  return body == std::string::npos ? "" : response.substr(body + 4);
}

}  // namespace facet::testing
