#include "server/worker_group.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>
#include <stdexcept>

extern char** environ;

namespace facet::server {
namespace {

constexpr int kEventsFd = 3;  // where rank 0 finds its event pipe
constexpr size_t kMaxEventBytes = 64 << 20;

std::string ReadErrorFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  std::string s = text.str();
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

}  // namespace

WorkerGroup::WorkerGroup(const WorkerLaunch& launch) {
  int pipe_fds[2];
  if (pipe2(pipe_fds, O_CLOEXEC) != 0) throw std::runtime_error(std::string("pipe: ") + std::strerror(errno));
  events_fd_ = pipe_fds[0];

  // Everything the children need is prepared before fork: between fork and exec only async-signal-safe calls.
  const auto is_rendezvous_variable = [](const std::string& entry) {
    for (const char* name : {"MASTER_ADDR=", "MASTER_PORT=", "WORLD_SIZE=", "RANK=", "LOCAL_RANK=", "LOCAL_WORLD_SIZE="}) {
      if (entry.rfind(name, 0) == 0) return true;
    }
    return false;
  };
  std::vector<std::string> base_env;  // the server's environment, minus any rendezvous settings of its own
  for (char** e = environ; *e != nullptr; ++e) {
    if (!is_rendezvous_variable(*e)) base_env.emplace_back(*e);
  }
  for (int rank = 0; rank < launch.local_processes; ++rank) {
    Worker w;
    w.rank = rank;
    w.log_path = launch.log_dir + "/rank-" + std::to_string(rank) + ".log";
    w.error_path = launch.log_dir + "/rank-" + std::to_string(rank) + ".error";
    ::unlink(w.error_path.c_str());
    std::vector<std::string> env = base_env;
    env.push_back("MASTER_ADDR=" + launch.master_addr);
    env.push_back("MASTER_PORT=" + std::to_string(launch.master_port));
    env.push_back("WORLD_SIZE=" + std::to_string(launch.world_size));
    env.push_back("RANK=" + std::to_string(rank));
    env.push_back("LOCAL_RANK=" + std::to_string(rank));
    env.push_back("LOCAL_WORLD_SIZE=" + std::to_string(launch.local_processes));
    std::vector<std::string> args = {launch.executable, "train-worker", "--task", launch.task_file, "--error-file",
                                     w.error_path};
    if (rank == 0) args.insert(args.end(), {"--events-fd", std::to_string(kEventsFd)});
    std::vector<char*> argv, envp;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    for (auto& e : env) envp.push_back(e.data());
    envp.push_back(nullptr);
    const int log_fd = ::open(w.log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (log_fd < 0) {
      KillAll();
      throw std::runtime_error("cannot open worker log '" + w.log_path + "': " + std::strerror(errno));
    }
    const pid_t pid = fork();
    if (pid == 0) {
      // The child. A worker dies with the server (its SIGTERM makes it checkpoint and stop).
      prctl(PR_SET_PDEATHSIG, SIGTERM);
      sigset_t none;
      sigemptyset(&none);
      sigprocmask(SIG_SETMASK, &none, nullptr);  // the server blocks SIGTERM/SIGINT/SIGHUP for its signal thread
      dup2(log_fd, STDOUT_FILENO);
      dup2(log_fd, STDERR_FILENO);
      if (rank == 0) dup2(pipe_fds[1], kEventsFd);  // dup2 clears O_CLOEXEC on the copy
      execve(argv[0], argv.data(), envp.data());
      const char message[] = "facet-server: cannot exec the training worker\n";
      (void)!write(STDERR_FILENO, message, sizeof(message) - 1);
      _exit(127);
    }
    ::close(log_fd);
    if (pid < 0) {
      const int error = errno;
      KillAll();
      throw std::runtime_error(std::string("cannot start a training worker: fork: ") + std::strerror(error));
    }
    w.pid = pid;
    workers_.push_back(w);
  }
  ::close(pipe_fds[1]);  // the pipe reports end-of-file once rank 0 is gone
}

WorkerGroup::~WorkerGroup() {
  KillAll();
  if (events_fd_ >= 0) ::close(events_fd_);
}

std::optional<internal::WorkerEvent> WorkerGroup::NextEvent(std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (true) {
    if (buffer_.size() >= 4) {
      const auto* b = reinterpret_cast<const unsigned char*>(buffer_.data());
      const size_t length = b[0] | (b[1] << 8) | (b[2] << 16) | (static_cast<size_t>(b[3]) << 24);
      if (length > kMaxEventBytes) throw std::runtime_error("training worker sent a malformed event stream");
      if (buffer_.size() >= 4 + length) {
        internal::WorkerEvent event;
        if (!event.ParseFromArray(buffer_.data() + 4, static_cast<int>(length))) {
          throw std::runtime_error("training worker sent an event that does not parse");
        }
        buffer_.erase(0, 4 + length);
        return event;
      }
    }
    if (events_fd_ < 0) return std::nullopt;
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    pollfd p{events_fd_, POLLIN, 0};
    const int ready = ::poll(&p, 1, static_cast<int>(std::max<int64_t>(0, left.count())));
    if (ready < 0 && errno == EINTR) continue;
    if (ready <= 0) return std::nullopt;
    char chunk[65536];
    const ssize_t n = ::read(events_fd_, chunk, sizeof(chunk));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {  // rank 0 closed its end: no more events
      ::close(events_fd_);
      events_fd_ = -1;
      continue;
    }
    buffer_.append(chunk, static_cast<size_t>(n));
  }
}

void WorkerGroup::SignalAll(int signal) {
  for (const auto& w : workers_) {
    if (!w.exited) ::kill(w.pid, signal);
  }
}

void WorkerGroup::KillAll() {
  for (auto& w : workers_) {
    if (w.exited) continue;
    ::kill(w.pid, SIGKILL);
    while (::waitpid(w.pid, &w.status, 0) < 0 && errno == EINTR) {
    }
    w.exited = true;
  }
}

std::string WorkerGroup::Describe(const Worker& w) const {
  std::string what = "rank " + std::to_string(w.rank);
  if (WIFSIGNALED(w.status)) {
    what += " was killed by signal " + std::to_string(WTERMSIG(w.status)) + " (" + strsignal(WTERMSIG(w.status)) + ")";
  } else {
    what += " exited with status " + std::to_string(WEXITSTATUS(w.status));
  }
  const std::string error = ReadErrorFile(w.error_path);
  if (!error.empty()) what += ": " + error;
  return what + " (log: " + w.log_path + ")";
}

std::optional<std::string> WorkerGroup::CheckExits() {
  for (auto& w : workers_) {
    if (w.exited) continue;
    const pid_t done = ::waitpid(w.pid, &w.status, WNOHANG);
    if (done == w.pid) w.exited = true;
  }
  std::vector<const Worker*> failed;
  for (const auto& w : workers_) {
    if (w.exited && !(WIFEXITED(w.status) && WEXITSTATUS(w.status) == 0)) failed.push_back(&w);
  }
  if (failed.empty()) return std::nullopt;
  std::stable_sort(failed.begin(), failed.end(), [](const Worker* a, const Worker* b) {
    return WIFSIGNALED(a->status) && !WIFSIGNALED(b->status);
  });
  std::string description;
  for (const Worker* w : failed) description += (description.empty() ? "" : "; ") + Describe(*w);
  return description;
}

bool WorkerGroup::AllExited() const {
  for (const auto& w : workers_) {
    if (!w.exited) return false;
  }
  return true;
}

}  // namespace facet::server
