#include "server/train_worker.h"

#include "core/distributed/distributed_group.h"
#include "core/train/run_data.h"
#include "core/train/trainer.h"
#include "core/util/device.h"
#include "core/util/file_util.h"
#include "core/util/flag_set.h"
#include "facet/internal/worker.pb.h"
#include "server/logging.h"
#include "server/proto_convert.h"

#include <google/protobuf/text_format.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <fstream>

namespace facet::server {
namespace {

const char kUsage[] =
    "usage: facet-server train-worker --task FILE [flags]\n"
    "One rank of a data-parallel training job. Rendezvous follows torchrun: MASTER_ADDR and MASTER_PORT (default: the\n"
    "task file's), WORLD_SIZE (must equal the job's world_size), RANK and LOCAL_RANK (the GPU it drives).\n"
    "SIGTERM checkpoints the current step and stops (the job resumes there); SIGUSR1 cancels.";

std::atomic<bool> g_suspend{false};
std::atomic<bool> g_cancel{false};

void OnSignal(int signal) {
  if (signal == SIGUSR1) {
    g_cancel = true;
  } else {
    g_suspend = true;
  }
}

// Rank 0's event stream to the server: a 4-byte little-endian length, then the message.
class EventWriter {
 public:
  explicit EventWriter(int fd) : fd_(fd) {}
  bool enabled() const { return fd_ >= 0; }
  void Write(const internal::WorkerEvent& event) {
    if (fd_ < 0) return;
    const std::string bytes = event.SerializeAsString();
    const uint32_t n = static_cast<uint32_t>(bytes.size());
    std::string frame = {static_cast<char>(n & 0xff), static_cast<char>((n >> 8) & 0xff),
                         static_cast<char>((n >> 16) & 0xff), static_cast<char>((n >> 24) & 0xff)};
    frame += bytes;
    size_t done = 0;
    while (done < frame.size()) {
      const ssize_t w = ::write(fd_, frame.data() + done, frame.size() - done);
      if (w < 0 && errno == EINTR) continue;
      if (w <= 0) {  // the server is gone: keep the work, stop at the next step
        spdlog::warn("lost the server's event pipe ({}): suspending", std::strerror(errno));
        fd_ = -1;
        g_suspend = true;
        return;
      }
      done += static_cast<size_t>(w);
    }
  }

 private:
  int fd_;
};

internal::WorkerTask ReadTask(const std::string& path) {
  const std::vector<char> bytes = ReadFileBytes(path);
  internal::WorkerTask task;
  if (!google::protobuf::TextFormat::ParseFromString(std::string(bytes.begin(), bytes.end()), &task)) {
    throw std::invalid_argument("task file '" + path + "' is not a WorkerTask in protobuf text format");
  }
  return task;
}

int Train(const internal::WorkerTask& task, EventWriter& events) {
  TrainingConfig config = ToCoreConfig(task.config());
  config.device = task.device().empty() ? "auto" : task.device();
  config.threads = task.threads();
  config.checkpoint_dir = task.checkpoint_dir();

  RendezvousSettings defaults;
  defaults.master_addr = task.master_addr();
  defaults.master_port = task.master_port();
  defaults.world_size = config.world_size;
  if (task.rendezvous_timeout_s() > 0) defaults.rendezvous_timeout = std::chrono::seconds(task.rendezvous_timeout_s());
  if (task.collective_timeout_s() > 0) defaults.collective_timeout = std::chrono::seconds(task.collective_timeout_s());
  const RendezvousSettings rendezvous = RendezvousFromEnvironment(defaults);
  c10::Device device = ResolveDevice(config.device);
  if (device.is_cuda()) {  // one GPU per local rank, as torchrun does
    config.device = "cuda:" + std::to_string(rendezvous.local_rank);
    device = ResolveDevice(config.device);
  }
  spdlog::info("rank {} of {} joining {}:{} on {}", rendezvous.rank, rendezvous.world_size, rendezvous.master_addr,
               rendezvous.master_port, device.str());
  auto group = DistributedGroup::Join(rendezvous, device);
  spdlog::info("rank {} joined ({})", group->rank(), group->backend());

  TrainingData data = OpenTrainingData(config, DataShard{group->rank(), group->world_size()});
  Trainer trainer(config, *data.train, *data.validation, group.get());
  TrainerCallbacks callbacks;
  callbacks.should_stop = [] { return g_cancel.load(); };
  callbacks.should_suspend = [] { return g_suspend.load(); };
  auto last_progress = std::chrono::steady_clock::now() - std::chrono::hours(1);
  if (events.enabled()) {
    callbacks.on_step = [&](const StepProgress& p) {
      const auto now = std::chrono::steady_clock::now();
      if (p.global_step != p.total_steps && now - last_progress < std::chrono::milliseconds(100)) return;
      last_progress = now;
      internal::WorkerEvent event;
      *event.mutable_progress() = ToProto(p, /*eta_seconds=*/0.0);  // the server knows its own clock
      events.Write(event);
    };
    callbacks.on_epoch = [&](const EpochMetrics& m) {
      internal::WorkerEvent event;
      *event.mutable_epoch() = ToProto(m);
      events.Write(event);
    };
  }
  const TrainResult result = trainer.Run(callbacks);
  internal::WorkerEvent event;
  auto* out = event.mutable_result();
  for (const auto& m : result.history) *out->add_history() = ToProto(m);
  out->set_best_epoch(result.best_epoch);
  out->set_resumed_from_epoch(result.resumed_from_epoch);
  out->set_cancelled(result.cancelled);
  out->set_suspended(result.suspended);
  if (!result.cancelled && !result.suspended) {
    const CalibrationReport calibration = trainer.Calibrate();  // a collective: every rank takes part
    if (group->is_primary()) {
      trainer.ExportModel(task.export_path());
      *out->mutable_calibration() = ToProto(calibration);
    }
  }
  events.Write(event);
  spdlog::info("rank {} done{}", group->rank(), result.suspended ? " (suspended)" : result.cancelled ? " (cancelled)" : "");
  return 0;
}

}  // namespace

int RunTrainWorker(int argc, char** argv) {
  FlagSet flags(kUsage);
  flags.String("task", "", "WorkerTask file (protobuf text format) that facet-server wrote for the job");
  flags.Int("events-fd", -1, "rank 0: file descriptor to stream progress to facet-server (-1: none)");
  flags.String("error-file", "", "where to write the error message when training fails");
  flags.String("log-level", "info", "trace, debug, info, warn, error, critical or off", "FACET_LOG_LEVEL");
  try {
    flags.Parse(argc, argv);
    if (flags.help_requested()) {
      std::fputs(flags.Help().c_str(), stdout);
      return 0;
    }
    if (flags.GetString("task").empty()) throw std::invalid_argument("--task: is required");
    ConfigureLogging(flags.GetString("log-level"), false);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "facet-server train-worker: %s\n", e.what());
    return 2;
  }
  std::signal(SIGTERM, OnSignal);
  std::signal(SIGINT, OnSignal);
  std::signal(SIGUSR1, OnSignal);
  std::signal(SIGPIPE, SIG_IGN);
  EventWriter events(static_cast<int>(flags.GetInt("events-fd")));
  try {
    return Train(ReadTask(flags.GetString("task")), events);
  } catch (const std::exception& e) {
    spdlog::error("training failed: {}", e.what());
    if (!flags.GetString("error-file").empty()) {
      std::ofstream(flags.GetString("error-file")) << e.what() << "\n";
    }
    return 1;
  }
}

}  // namespace facet::server
