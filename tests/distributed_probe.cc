// facet-distributed-probe: one rank of a small data-parallel run for tests/distributed_test.cc. It trains a tiny
// model on a synthetic folder and writes, after every step, a digest of its parameters (and at the end of each
// epoch of its buffers), then the final parameters, so that a test can compare ranks bit for bit and compare the
// run with a one-process run.
#include "core/distributed/distributed_group.h"
#include "core/train/run_data.h"
#include "core/train/trainer.h"

#include <torch/torch.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <string>
#include <unistd.h>

namespace {

uint64_t Digest(const std::vector<at::Tensor>& tensors) {
  uint64_t h = 1469598103934665603ULL;  // FNV-1a over the bytes
  for (const auto& t : tensors) {
    const auto c = t.detach().cpu().contiguous();
    const auto* p = static_cast<const unsigned char*>(c.data_ptr());
    for (size_t i = 0; i < c.nbytes(); ++i) h = (h ^ p[i]) * 1099511628211ULL;
  }
  return h;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 9) {
    std::cerr << "usage: facet-distributed-probe DATA_DIR WORLD RANK PORT GLOBAL_BATCH EPOCHS DIE_AT_STEP OUT\n";
    return 2;
  }
  const std::string data_dir = argv[1], out_path = argv[8];
  const int world = std::atoi(argv[2]), rank = std::atoi(argv[3]), port = std::atoi(argv[4]);
  const int die_at_step = std::atoi(argv[7]);
  try {
    facet::TrainingConfig config;
    config.data.data_dir = data_dir;
    config.data.val_fraction = 0.25;
    config.arch = "resnet18";
    config.base_width = 8;
    config.image_size = 32;
    config.batch_size = std::atoi(argv[5]);
    config.frozen.epochs = 0;
    config.unfrozen = {std::atoi(argv[6]), 1e-3, 1e-4};
    config.data.loader_workers = 0;
    config.threads = 1;
    config.device = "cpu";
    config.world_size = world;

    std::unique_ptr<facet::DistributedGroup> group;
    if (world > 1) {
      facet::RendezvousSettings rendezvous;
      rendezvous.master_port = port;
      rendezvous.world_size = world;
      rendezvous.rank = rank;
      rendezvous.rendezvous_timeout = std::chrono::seconds(60);
      rendezvous.collective_timeout = std::chrono::seconds(20);
      group = facet::DistributedGroup::Join(rendezvous, c10::Device(c10::kCPU));
    }
    facet::TrainingData data = facet::OpenTrainingData(config, facet::DataShard{rank, world});
    facet::Trainer trainer(config, *data.train, *data.validation, group.get());
    // Per-sample mode: no dropout, and BatchNorm on its running statistics, so that each image's gradient does not
    // depend on which others share its batch: then two processes must equal one exactly (up to float rounding).
    const bool per_sample = std::getenv("PROBE_PER_SAMPLE") != nullptr;
    if (per_sample) {
      for (auto& m : trainer.model()->modules()) {
        if (auto* d = m->as<torch::nn::Dropout>()) d->options.p(0.0);
      }
    }
    std::ofstream out(out_path + ".steps");
    facet::TrainerCallbacks callbacks;
    callbacks.should_stop = [&] {  // polled before every step, after the trainer has set training mode
      if (per_sample) {
        for (auto& m : trainer.model()->modules()) {
          if (m->as<torch::nn::BatchNorm2d>() || m->as<torch::nn::BatchNorm1d>()) m->eval();
        }
      }
      return false;
    };
    callbacks.on_step = [&](const facet::StepProgress& p) {
      if (p.global_step == die_at_step) _exit(3);  // as a crash would: no goodbye to the peers
      out << "step " << p.global_step << " " << Digest(trainer.model()->parameters()) << "\n" << std::flush;
    };
    callbacks.on_epoch = [&](const facet::EpochMetrics& m) {
      out << "epoch " << m.epoch << " buffers " << Digest(trainer.model()->buffers()) << " val_loss "
          << m.validation.loss << " n " << m.validation.n << "\n" << std::flush;
    };
    torch::save(trainer.model()->parameters(), out_path + ".init.pt");  // rank 0's, broadcast to all
    trainer.Run(callbacks);
    torch::save(trainer.model()->parameters(), out_path + ".pt");
  } catch (const std::exception& e) {
    std::cerr << "rank " << rank << ": " << e.what() << "\n";
    return 1;
  }
  return 0;
}
