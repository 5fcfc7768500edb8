// A group of training processes joined through PyTorch's c10d: rendezvous on a TCPStore, collectives through
// ProcessGroupGloo (CPU) or ProcessGroupNCCL (CUDA, when LibTorch was built with it). The c10d headers stay in
// the .cc: this header is cheap to include.
// Thread contract: one thread drives a DistributedGroup (the collectives of every rank must be called in the same
// order). Collectives throw std::runtime_error when a peer died or timed out; settings errors are std::invalid_argument.
#pragma once

#include <ATen/core/Tensor.h>
#include <c10/core/Device.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace facet {

// torchrun's rendezvous settings. Every process of a job uses the same master address, port and world size;
// each has its own rank (0..world_size-1) and, per host, its local rank (which GPU it drives).
struct RendezvousSettings {
  std::string master_addr = "127.0.0.1";
  int master_port = 29500;
  int world_size = 1;
  int rank = 0;
  int local_rank = 0;
  std::chrono::milliseconds rendezvous_timeout{300'000};  // for every rank to join
  std::chrono::milliseconds collective_timeout{300'000};  // for any one collective (a dead peer fails sooner)
};

// Overrides `defaults` with MASTER_ADDR, MASTER_PORT, WORLD_SIZE, RANK and LOCAL_RANK where they are set.
// Throws std::invalid_argument naming the variable when one is not a number or out of range.
RendezvousSettings RendezvousFromEnvironment(RendezvousSettings defaults);

// Throws std::invalid_argument naming the field.
void ValidateRendezvous(const RendezvousSettings& settings);

// True when this LibTorch build has c10d with Gloo (Debian's does, with libgloo-dev's headers).
bool DistributedTrainingAvailable();

class DistributedGroup {
 public:
  // Blocks until all world_size ranks have joined (std::runtime_error after rendezvous_timeout, naming the
  // master address). NCCL for a CUDA device when LibTorch has it, Gloo otherwise.
  static std::unique_ptr<DistributedGroup> Join(const RendezvousSettings& settings, c10::Device device);
  ~DistributedGroup();
  DistributedGroup(const DistributedGroup&) = delete;
  DistributedGroup& operator=(const DistributedGroup&) = delete;

  int rank() const { return rank_; }
  int world_size() const { return world_size_; }
  bool is_primary() const { return rank_ == 0; }
  const std::string& backend() const { return backend_; }

  // A collective in flight; Wait throws std::runtime_error when it failed (a peer died, a timeout).
  class Pending {
   public:
    virtual ~Pending() = default;
    virtual void Wait() = 0;
  };

  // Where tensors given to the async collective must live: the CUDA device for NCCL, else the CPU. The other
  // collectives take tensors anywhere and move them as needed.
  c10::Device collective_device() const;

  // Element-wise sum over all ranks, in place. The async form returns at once; the tensor (contiguous, on
  // collective_device()) must not be touched until Wait.
  std::unique_ptr<Pending> AllReduceSumAsync(at::Tensor& tensor);
  void AllReduceSum(at::Tensor& tensor);
  // Overwrites every rank's tensors with rank `root`'s (same shapes on every rank).
  void Broadcast(std::vector<at::Tensor>& tensors, int root = 0);
  // Every rank's rows (dim 0, any count per rank; the other dims equal), concatenated in rank order.
  at::Tensor AllGatherRows(const at::Tensor& rows);
  // For each flag: whether any rank set it.
  std::vector<bool> AnyRank(const std::vector<bool>& flags);

 private:
  struct Impl;
  explicit DistributedGroup(std::unique_ptr<Impl> impl, int rank, int world_size, std::string backend);

  std::unique_ptr<Impl> impl_;
  int rank_, world_size_;
  std::string backend_;
};

}  // namespace facet
