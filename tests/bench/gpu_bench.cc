// facet-gpu-bench: training and inference images/s of the core library on a GPU (or any device), with LibTorch
// alone (no OpenCV, gRPC or prometheus-cpp), so that it builds against the CUDA LibTorch of a python3 torch
// package. Random tensors stand in for images: this measures the model, the loss and the training step, not
// decoding. One JSON line per figure; tests/bench/gpu_bench.sh runs it beside the same in Python torch.
//
//   facet-gpu-bench [--device cuda] [--arch resnet34] [--sizes 64,128] [--batch 256] [--steps 20]
#include "core/data/batch_source.h"
#include "core/infer/fused_encoder.h"
#include "core/train/trainer.h"
#include "core/util/device.h"
#include "core/util/flag_set.h"

#include <torch/torch.h>

#include <chrono>
#include <cstdio>
#include <sstream>
#include <string>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;

// `steps` batches of random images and labels, made once on the device.
class RandomBatches final : public facet::BatchSource {
 public:
  RandomBatches(int64_t batch, int64_t size, int64_t steps, c10::Device device) : steps_(steps), batch_(batch) {
    const auto on = torch::TensorOptions().device(device);
    b_ = facet::Batch{torch::randn({batch, 3, size, size}, on), torch::rand({batch}, on),
                      torch::randint(2, {batch}, on.dtype(torch::kLong)), torch::randint(5, {batch}, on.dtype(torch::kLong))};
  }
  int64_t num_samples() const override { return steps_ * batch_; }
  int64_t batches_per_epoch() const override { return steps_; }
  using BatchSource::StartEpoch;
  void StartEpoch(uint64_t, int64_t first_batch) override { next_ = first_batch; }
  std::optional<facet::Batch> Next() override {
    if (next_ >= steps_) return std::nullopt;
    ++next_;
    return b_;
  }

 private:
  int64_t steps_, batch_, next_ = 0;
  facet::Batch b_;
};

void Sync(const c10::Device& device) {
  if (device.is_cuda()) torch::cuda::synchronize(device.has_index() ? device.index() : 0);
}

void Train(const facet::FlagSet& f, int size, const std::string& precision, bool channels_last) {
  const c10::Device device = facet::ResolveDevice(f.GetString("device"));
  const int64_t batch = f.GetInt("batch"), steps = f.GetInt("steps");
  RandomBatches train(batch, size, steps, device), validation(batch, size, 1, device);
  facet::TrainingConfig config;
  config.data.data_dir = "(random tensors)";
  config.arch = f.GetString("arch");
  config.image_size = size;
  config.batch_size = static_cast<int>(batch);
  config.frozen = {0, 3e-3, 0};
  config.unfrozen = {1, 3e-3, 3e-4};
  config.device = f.GetString("device");
  config.precision = precision;
  config.channels_last = channels_last;
  facet::Trainer trainer(config, train, validation);
  Clock::time_point start;
  double seconds = 0;
  facet::TrainerCallbacks callbacks;
  callbacks.on_step = [&](const facet::StepProgress& p) {
    // loss.item() in the step synchronises, so step ends are real.
    if (p.step == 3) start = Clock::now();
    if (p.step > 3) seconds = std::chrono::duration<double>(Clock::now() - start).count();
  };
  trainer.Run(callbacks);
  std::printf("{\"impl\":\"C++\",\"bench\":\"train\",\"arch\":\"%s\",\"size\":%d,\"batch\":%lld,\"precision\":\"%s\","
              "\"channels_last\":%s,\"images_per_s\":%.1f}\n",
              config.arch.c_str(), size, static_cast<long long>(batch), precision.c_str(),
              channels_last ? "true" : "false", (steps - 3) * batch / seconds);
  std::fflush(stdout);
}

void Infer(const facet::FlagSet& f, int size, const std::string& precision, bool channels_last) {
  const c10::Device device = facet::ResolveDevice(f.GetString("device"));
  const int64_t batch = f.GetInt("batch"), steps = f.GetInt("steps");
  torch::manual_seed(0);
  facet::MultiTaskNet model(facet::ResNetOptions{facet::ParseArch(f.GetString("arch")), 64});
  model->to(device);
  model->eval();
  auto x = torch::randn({batch, 3, size, size}, torch::TensorOptions().device(device));
  if (channels_last) {
    for (auto& p : model->parameters()) {
      if (p.dim() == 4) p.set_data(p.contiguous(torch::MemoryFormat::ChannelsLast));
    }
    x = x.contiguous(torch::MemoryFormat::ChannelsLast);
  }
  torch::InferenceMode inference;
  facet::BFloat16Autocast autocast(device, precision == "bf16");
  for (int i = 0; i < 3; ++i) model->forward(x);
  Sync(device);
  const auto start = Clock::now();
  for (int64_t i = 0; i < steps; ++i) model->forward(x);
  Sync(device);
  const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
  std::printf("{\"impl\":\"C++\",\"bench\":\"infer\",\"arch\":\"%s\",\"size\":%d,\"batch\":%lld,\"precision\":\"%s\","
              "\"channels_last\":%s,\"images_per_s\":%.1f}\n",
              f.GetString("arch").c_str(), size, static_cast<long long>(batch), precision.c_str(),
              channels_last ? "true" : "false", steps * batch / seconds);
  std::fflush(stdout);
}

}  // namespace

int main(int argc, char** argv) {
  facet::FlagSet f("usage: facet-gpu-bench [flags]\nTraining and inference images/s of the core library, random inputs.");
  f.String("device", "cuda", "cpu | cuda | cuda:N | auto");
  f.String("arch", "resnet34", "resnet18 | resnet34 | resnet50");
  f.String("sizes", "64,128", "input sizes");
  f.Int("batch", 256, "batch size");
  f.Int("steps", 20, "timed steps per figure (training: after 3 warm-up steps)");
  f.Int("threads", 0, "LibTorch CPU threads (0: all cores)");
  try {
    f.Parse(argc, argv);
    if (f.help_requested()) {
      std::fputs(f.Help().c_str(), stdout);
      return 0;
    }
    facet::ConfigureThreads(static_cast<int>(f.GetInt("threads")));
    std::stringstream sizes(f.GetString("sizes"));
    for (std::string s; std::getline(sizes, s, ',');) {
      for (const std::string precision : {"fp32", "bf16"}) {
        for (const bool channels_last : {false, true}) {
          Train(f, std::stoi(s), precision, channels_last);
          Infer(f, std::stoi(s), precision, channels_last);
        }
      }
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "facet-gpu-bench: %s\n", e.what());
    return 1;
  }
  return 0;
}
