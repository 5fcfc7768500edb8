// facet-bench: speed measurements of the core library, one JSON line per figure (tests/bench/run_bench.py runs
// them beside the Python reference and writes docs/benchmarks.md). Not a test: it asserts nothing.
//
//   facet-bench train   --data DIR [--arch resnet34] [--size 64] [--batch 64] [--images 2048] [--workers 1]
//                       [--job-thread]
//                       (data-parallel when WORLD_SIZE > 1: one process per rank, torchrun's environment)
//   facet-bench infer   [--arch resnet34] [--size 64] [--batches 1,8,32,128] [--serving-copy]
//   facet-bench loader  --data DIR [--size 64] [--batch 64] [--images 2048] [--workers 0,1,2]
//   facet-bench conv    (3x3, 64 channels, 56x56, batch 32: the machine's convolution throughput)
//   facet-bench ceiling --data DIR [--arch resnet34] [--size 64] [--batches 1,8,32] [--images 256]
//   facet-bench export  --out FILE [--arch resnet34] [--size 64]   (random weights, for serving benchmarks)
// Common: --threads N (LibTorch intra-op threads, default 2), --device cpu|cuda|auto, --seconds S (per figure).
#include "core/data/image_io.h"
#include "core/data/loader.h"
#include "core/data/utkface_dataset.h"
#include "core/distributed/distributed_group.h"
#include "core/infer/predictor.h"
#include "core/model/fused_kernels.h"
#include "core/model/model_file.h"
#include "core/train/checkpoint.h"
#include "core/train/run_data.h"
#include "core/train/trainer.h"
#include "core/util/device.h"
#include "core/util/file_util.h"
#include "core/util/flag_set.h"

#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <exception>
#include <filesystem>
#include <fstream>
#include <functional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;
double Since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

std::vector<int> IntList(const std::string& text) {
  std::vector<int> values;
  std::stringstream in(text);
  for (std::string item; std::getline(in, item, ',');) values.push_back(std::stoi(item));
  return values;
}

// Repeats `run` (3 warm-ups) until at least 7 timed runs and `seconds` have passed (at most 70 runs): the median and
// the minimum seconds per run, as the reference's infer-bench does.
std::pair<double, double> TimeRuns(const std::function<void()>& run, double seconds) {
  for (int i = 0; i < 3; ++i) run();
  std::vector<double> times;
  const auto start = Clock::now();
  while (times.size() < 7 || (Since(start) < seconds && times.size() < 70)) {
    const auto t = Clock::now();
    run();
    times.push_back(Since(t));
  }
  std::sort(times.begin(), times.end());
  return {times[times.size() / 2], times.front()};
}

void Sync(const c10::Device& device) {
  if (device.is_cuda()) torch::cuda::synchronize(device.index() < 0 ? 0 : device.index());
}

int Train(const facet::FlagSet& f) {
  facet::TrainingConfig config;
  config.data.data_dir = f.GetString("data");
  config.arch = f.GetString("arch");
  config.image_size = static_cast<int>(f.GetInt("size"));
  config.batch_size = static_cast<int>(f.GetInt("batch"));
  const int images = static_cast<int>(f.GetInt("images"));
  // Validation is not timed; keep it small but non-empty: `images` train, 1/32 as many validate.
  config.data.val_fraction = 1.0 / 33;
  config.data.max_images = images + images / 32;
  config.frozen = {0, 3e-3, 0};
  config.unfrozen = {1, 3e-3, 3e-4};
  config.threads = static_cast<int>(f.GetInt("threads"));
  config.data.loader_workers = static_cast<int>(f.GetInt("workers"));
  config.device = f.GetString("device");
  config.precision = f.GetString("precision");
  config.channels_last = f.GetBool("channels-last");
  std::unique_ptr<facet::DistributedGroup> group;
  const facet::RendezvousSettings rendezvous = facet::RendezvousFromEnvironment({});
  if (rendezvous.world_size > 1) {
    group = facet::DistributedGroup::Join(rendezvous, facet::ResolveDevice(config.device));
    config.world_size = rendezvous.world_size;
  }
  facet::TrainingData data = facet::OpenTrainingData(config, {rendezvous.rank, rendezvous.world_size});
  facet::Trainer trainer(config, *data.train, *data.validation, group.get());
  const facet::ScopedFusedKernels kernels(!f.GetBool("unfused-kernels"));
  // Like the reference: images/s over the training loop minus its first 2 batches, data loading included.
  Clock::time_point after_warm_up;
  int64_t steps = 0, measured_images = 0;
  facet::TrainerCallbacks callbacks;
  double seconds = 0;
  callbacks.on_step = [&](const facet::StepProgress& p) {
    steps = p.step;
    if (p.step == 2) after_warm_up = Clock::now();
    if (p.step > 2) {
      measured_images += config.batch_size;  // the global batch: ranks step together
      seconds = Since(after_warm_up);
    }
  };
  trainer.Run(callbacks);
  if (rendezvous.rank != 0) return 0;  // one line per run: rank 0 speaks for all
  std::printf("{\"bench\":\"train\",\"precision\":\"%s\",\"channels_last\":%s,\"fused_kernels\":%s,"
              "\"arch\":\"%s\",\"size\":%d,\"batch\":%d,"
              "\"images\":%lld,\"threads\":%d,\"workers\":%d,\"processes\":%d,\"job_thread\":%s,"
              "\"steps\":%lld,\"images_per_s\":%.2f}\n",
              config.precision.c_str(), config.channels_last ? "true" : "false",
              facet::FusedKernelsEnabled() ? "true" : "false", config.arch.c_str(),
              config.image_size, config.batch_size,
              static_cast<long long>(data.train->num_samples()),
              facet::ConfigureThreads(config.threads), config.data.loader_workers, config.world_size,
              f.GetBool("job-thread") ? "true" : "false", static_cast<long long>(steps),
              measured_images / std::max(seconds, 1e-9));
  return 0;
}

// Runs `command` in a thread of its own, as facet-server runs a training job: glibc serves a thread other than the
// main one from arenas of its own, which behave differently (tests/bench/profile.md, "Large blocks kept for reuse").
int InJobThread(const std::function<int(const facet::FlagSet&)>& command, const facet::FlagSet& f) {
  int rc = 1;
  std::exception_ptr error;
  std::thread job([&] {
    try {
      rc = command(f);
    } catch (...) {
      error = std::current_exception();
    }
  });
  job.join();
  if (error) std::rethrow_exception(error);
  return rc;
}

int Infer(const facet::FlagSet& f) {
  const int size = static_cast<int>(f.GetInt("size"));
  const std::string arch = f.GetString("arch");
  facet::ConfigureThreads(static_cast<int>(f.GetInt("threads")));
  torch::manual_seed(0);
  facet::MultiTaskNet model(facet::ResNetOptions{facet::ParseArch(arch), 64});
  facet::PredictorOptions options;
  options.device = f.GetString("device");
  options.max_batch_size = 1024;
  facet::Predictor predictor(model, size, options);
  const c10::Device device = facet::ResolveDevice(options.device);
  for (int batch : IntList(f.GetString("batches"))) {
    const auto input = torch::randn({batch, 3, size, size});
    const auto [median, best] = TimeRuns([&] { predictor.PredictTensor(input); Sync(device); }, f.GetDouble("seconds"));
    std::printf("{\"bench\":\"infer\",\"arch\":\"%s\",\"size\":%d,\"batch\":%d,\"median_ms\":%.3f,\"min_ms\":%.3f,"
                "\"images_per_s\":%.2f}\n",
                arch.c_str(), size, batch, median * 1e3, best * 1e3, batch / median);
  }
  return 0;
}

int Loader(const facet::FlagSet& f) {
  facet::ScanResult scan = facet::ScanUtkFaceFolder(f.GetString("data"));
  auto samples = facet::Subsample(std::move(scan.samples), static_cast<int>(f.GetInt("images")), 42);
  facet::ConfigureThreads(static_cast<int>(f.GetInt("threads")));
  for (int workers : IntList(f.GetString("workers-list"))) {
    facet::LoaderOptions options;
    options.image_size = static_cast<int>(f.GetInt("size"));
    options.batch_size = static_cast<int>(f.GetInt("batch"));
    options.shuffle = options.augment = options.drop_last = true;
    options.workers = workers;
    facet::UtkFaceLoader loader(samples, options);
    loader.StartEpoch(1);  // warm the file cache and the workers
    while (loader.Next()) {
    }
    loader.StartEpoch(2);
    const auto start = Clock::now();
    int64_t images = 0;
    while (auto batch = loader.Next()) images += batch->size();
    const double seconds = Since(start);
    std::printf("{\"bench\":\"loader\",\"size\":%d,\"workers\":%d,\"images\":%lld,\"images_per_s\":%.2f}\n",
                options.image_size, workers, static_cast<long long>(images), images / seconds);
  }
  return 0;
}

int Conv(const facet::FlagSet& f) {
  facet::ConfigureThreads(static_cast<int>(f.GetInt("threads")));
  const c10::Device device = facet::ResolveDevice(f.GetString("device"));
  torch::NoGradGuard no_grad;
  const int64_t n = 32, c = 64, hw = 56;
  auto conv = torch::nn::Conv2d(torch::nn::Conv2dOptions(c, c, 3).padding(1).bias(false));
  conv->to(device);
  const auto x = torch::randn({n, c, hw, hw}, torch::TensorOptions().device(device));
  const double flops = 2.0 * n * hw * hw * c * c * 9;  // multiply-adds count twice
  for (const bool channels_last : {false, true}) {
    auto input = channels_last ? x.contiguous(torch::MemoryFormat::ChannelsLast) : x;
    if (channels_last) conv->weight.set_data(conv->weight.contiguous(torch::MemoryFormat::ChannelsLast));
    const auto [median, best] = TimeRuns([&] { conv->forward(input); Sync(device); }, f.GetDouble("seconds"));
    std::printf("{\"bench\":\"conv\",\"layout\":\"%s\",\"shape\":\"%lldx%lldx%lldx%lld k3\",\"median_ms\":%.3f,"
                "\"gflops\":%.2f,\"best_gflops\":%.2f}\n",
                channels_last ? "channels_last" : "contiguous", static_cast<long long>(n), static_cast<long long>(c),
                static_cast<long long>(hw), static_cast<long long>(hw), median * 1e3, flops / median / 1e9,
                flops / best / 1e9);
  }
  return 0;
}

// The in-process serving ceiling: JPEG bytes to predictions (decode, preprocess, batched forward), no gRPC.
int Ceiling(const facet::FlagSet& f) {
  facet::ConfigureThreads(static_cast<int>(f.GetInt("threads")));
  const int size = static_cast<int>(f.GetInt("size"));
  facet::ScanResult scan = facet::ScanUtkFaceFolder(f.GetString("data"));
  auto samples = facet::Subsample(std::move(scan.samples), static_cast<int>(f.GetInt("images")), 42);
  std::vector<std::string> files;
  for (const auto& s : samples) {
    const auto bytes = facet::ReadFileBytes(s.path);
    files.emplace_back(bytes.begin(), bytes.end());
  }
  torch::manual_seed(0);
  facet::MultiTaskNet model(facet::ResNetOptions{facet::ParseArch(f.GetString("arch")), 64});
  facet::PredictorOptions options;
  options.device = f.GetString("device");
  options.max_batch_size = 1024;
  facet::Predictor predictor(model, size, options);
  for (int batch : IntList(f.GetString("batches"))) {
    size_t next = 0;
    auto run = [&] {
      std::vector<at::Tensor> inputs;
      for (int i = 0; i < batch; ++i) {
        const cv::Mat image = facet::DecodeImage(files[next++ % files.size()]);
        inputs.push_back(facet::PreprocessImage(facet::ViewOf(image), size));
      }
      predictor.PredictTensor(torch::stack(inputs));
    };
    const auto [median, best] = TimeRuns(run, f.GetDouble("seconds"));
    std::printf("{\"bench\":\"ceiling\",\"arch\":\"%s\",\"size\":%d,\"batch\":%d,\"median_ms\":%.3f,"
                "\"images_per_s\":%.2f}\n",
                f.GetString("arch").c_str(), size, batch, median * 1e3, batch / median);
  }
  return 0;
}

// A randomly initialised model, exported as training would: for serving benchmarks that need no trained weights.
int Export(const facet::FlagSet& f) {
  if (f.GetString("out").empty()) throw std::invalid_argument("export: --out FILE is required");
  torch::manual_seed(0);
  facet::MultiTaskNet model(facet::ResNetOptions{facet::ParseArch(f.GetString("arch")), 64});
  auto loss = facet::MakeMultiTaskLoss({});
  facet::ExportModel(f.GetString("out"), model, loss->LogVariances(), static_cast<int>(f.GetInt("size")));
  std::printf("{\"bench\":\"export\",\"arch\":\"%s\",\"out\":\"%s\"}\n", f.GetString("arch").c_str(),
              f.GetString("out").c_str());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2 || std::string(argv[1]) == "--help" || std::string(argv[1]) == "-h") {
    std::puts("usage: facet-bench train|infer|loader|conv|ceiling|export [flags]   (facet-bench COMMAND --help)");
    return argc < 2 ? 2 : 0;
  }
  const std::string command = argv[1];
  facet::FlagSet f("usage: facet-bench " + command + " [flags]\nPrints one JSON line per measurement.");
  f.String("data", "", "UTKFace-format folder (train, loader, ceiling)");
  f.String("arch", "resnet34", "resnet18 | resnet34 | resnet50");
  f.Int("size", 64, "input pixels per side");
  f.Int("batch", 64, "batch size (train, loader)");
  f.String("batches", "1,8,32,128", "batch sizes (infer, ceiling)");
  f.Int("images", 2048, "images (train, loader, ceiling)");
  f.Int("workers", 1, "loader threads while training");
  f.String("workers-list", "0,1,2", "loader thread counts to measure (loader)");
  f.Int("threads", 2, "LibTorch intra-op threads");
  f.String("device", "cpu", "cpu | cuda | cuda:N | auto");
  f.Double("seconds", 3.0, "time per figure, at least 7 runs (infer, conv, ceiling)");
  f.String("out", "", "model file to write (export)");
  f.String("precision", "fp32", "fp32 | bf16 (train)");
  f.Bool("channels-last", false, "train with the model and batches in channels-last (NHWC) layout (train)");
  f.Bool("job-thread", false, "train in a thread other than the main one, as facet-server runs a job (train)");
  f.Bool("unfused-kernels", false,
         "run LibTorch's operators where facet has its own CPU kernels (BatchNorm+ReLU, the stem's max-pool), for "
         "A/B comparisons (train)");
  try {
    f.Parse(argc, argv, 2);
    if (f.help_requested()) {
      std::fputs(f.Help().c_str(), stdout);
      return 0;
    }
    if (command == "train") return f.GetBool("job-thread") ? InJobThread(Train, f) : Train(f);
    if (command == "infer") return Infer(f);
    if (command == "loader") return Loader(f);
    if (command == "conv") return Conv(f);
    if (command == "ceiling") return Ceiling(f);
    if (command == "export") return Export(f);
    std::fprintf(stderr, "facet-bench: unknown command '%s'\n", command.c_str());
    return 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "facet-bench %s: %s\n", command.c_str(), e.what());
    return 1;
  }
}
