#include "core/distributed/distributed_group.h"

#include <torch/torch.h>
#include <torch/version.h>

#ifdef FACET_HAVE_C10D_GLOO
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#endif
#ifdef USE_C10D_NCCL
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#endif

#include <algorithm>
#include <cstdlib>
#include <stdexcept>

namespace facet {
namespace {

int IntFromEnvironment(const char* name, int fallback, int min, int max) {
  const char* text = std::getenv(name);
  if (text == nullptr || *text == '\0') return fallback;
  char* end = nullptr;
  const long value = std::strtol(text, &end, 10);
  if (*end != '\0' || value < min || value > max) {
    throw std::invalid_argument(std::string(name) + ": '" + text + "' is not an integer in [" +
                                std::to_string(min) + ", " + std::to_string(max) + "]");
  }
  return static_cast<int>(value);
}

bool IsLoopback(const std::string& host) {
  return host == "localhost" || host == "::1" || host.rfind("127.", 0) == 0;
}

}  // namespace

RendezvousSettings RendezvousFromEnvironment(RendezvousSettings s) {
  if (const char* addr = std::getenv("MASTER_ADDR"); addr != nullptr && *addr != '\0') s.master_addr = addr;
  s.master_port = IntFromEnvironment("MASTER_PORT", s.master_port, 1, 65535);
  s.world_size = IntFromEnvironment("WORLD_SIZE", s.world_size, 1, 1 << 16);
  s.rank = IntFromEnvironment("RANK", s.rank, 0, (1 << 16) - 1);
  s.local_rank = IntFromEnvironment("LOCAL_RANK", s.local_rank, 0, (1 << 16) - 1);
  return s;
}

void ValidateRendezvous(const RendezvousSettings& s) {
  if (s.master_addr.empty()) throw std::invalid_argument("MASTER_ADDR: is empty");
  if (s.master_port < 1 || s.master_port > 65535) throw std::invalid_argument("MASTER_PORT: must be in [1, 65535]");
  if (s.world_size < 1) throw std::invalid_argument("WORLD_SIZE: must be >= 1");
  if (s.rank < 0 || s.rank >= s.world_size) {
    throw std::invalid_argument("RANK: " + std::to_string(s.rank) + " is outside [0, WORLD_SIZE=" +
                                std::to_string(s.world_size) + ")");
  }
  if (s.local_rank < 0) throw std::invalid_argument("LOCAL_RANK: must be >= 0");
  if (s.rendezvous_timeout.count() <= 0 || s.collective_timeout.count() <= 0) {
    throw std::invalid_argument("timeouts must be positive");
  }
}

#ifdef FACET_HAVE_C10D_GLOO

bool DistributedTrainingAvailable() { return true; }

// LibTorch 2.0 split c10d's ProcessGroup into a dispatcher over per-device Backends, which Gloo's and NCCL's groups
// became; their collectives kept the signatures used here.
#if TORCH_VERSION_MAJOR >= 2
using CollectiveGroup = c10d::Backend;
#else
using CollectiveGroup = c10d::ProcessGroup;
#endif

struct DistributedGroup::Impl {
  c10::intrusive_ptr<c10d::Store> store;
  c10::intrusive_ptr<CollectiveGroup> group;
  c10::Device collective_device{c10::kCPU};  // NCCL reduces CUDA tensors only
};

namespace {

class PendingWork final : public DistributedGroup::Pending {
 public:
  explicit PendingWork(c10::intrusive_ptr<c10d::Work> work) : work_(std::move(work)) {}
  void Wait() override {
    try {
      work_->wait();
    } catch (const std::exception& e) {
      throw std::runtime_error(std::string("collective failed (a peer process died or timed out?): ") + e.what());
    }
  }

 private:
  c10::intrusive_ptr<c10d::Work> work_;
};

}  // namespace

std::unique_ptr<DistributedGroup> DistributedGroup::Join(const RendezvousSettings& s, c10::Device device) {
  ValidateRendezvous(s);
  auto impl = std::make_unique<Impl>();
  c10d::TCPStoreOptions store_options;
  store_options.port = static_cast<uint16_t>(s.master_port);
  store_options.isServer = s.rank == 0;
  store_options.numWorkers = s.world_size;
  store_options.waitWorkers = true;  // rank 0 returns once every rank has connected, or throws at the timeout
  store_options.timeout = s.rendezvous_timeout;
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 4)
  // From 2.4 the store defaults to its libuv server, which LibTorch builds without libuv (Debian's among them)
  // refuse at run time ("Libuv not available"); the classic server is in every build and is plenty for a
  // rendezvous of a few ranks.
  store_options.useLibUV = false;
#endif
  try {
    impl->store = c10::make_intrusive<c10d::TCPStore>(s.master_addr, store_options);
  } catch (const std::exception& e) {
    throw std::runtime_error("rendezvous at " + s.master_addr + ":" + std::to_string(s.master_port) + " as rank " +
                             std::to_string(s.rank) + " of " + std::to_string(s.world_size) + " failed within " +
                             std::to_string(s.rendezvous_timeout.count() / 1000) + " s: " + e.what());
  }
  std::string backend = "gloo";
  try {
#ifdef USE_C10D_NCCL
    if (device.is_cuda()) {
      auto options = c10d::ProcessGroupNCCL::Options::create();
      options->timeout = s.collective_timeout;
      impl->group = c10::make_intrusive<c10d::ProcessGroupNCCL>(impl->store, s.rank, s.world_size, options);
      backend = "nccl";
      impl->collective_device = device;
    }
#endif
    if (!impl->group) {
      auto options = c10d::ProcessGroupGloo::Options::create(s.collective_timeout);
      // PyTorch's convention: GLOO_SOCKET_IFNAME names the interface; a loopback master means a one-host job.
      if (const char* ifname = std::getenv("GLOO_SOCKET_IFNAME"); ifname != nullptr && *ifname != '\0') {
        options->devices.push_back(c10d::ProcessGroupGloo::createDeviceForInterface(ifname));
      } else if (IsLoopback(s.master_addr)) {
        options->devices.push_back(c10d::ProcessGroupGloo::createDeviceForHostname("127.0.0.1"));
      } else {
        options->devices.push_back(c10d::ProcessGroupGloo::createDefaultDevice());
      }
      impl->group = c10::make_intrusive<c10d::ProcessGroupGloo>(impl->store, s.rank, s.world_size, options);
    }
  } catch (const std::exception& e) {
    throw std::runtime_error("cannot connect rank " + std::to_string(s.rank) + " to its peers (" + backend +
                             "): " + e.what());
  }
  return std::unique_ptr<DistributedGroup>(new DistributedGroup(std::move(impl), s.rank, s.world_size, backend));
}

std::unique_ptr<DistributedGroup::Pending> DistributedGroup::AllReduceSumAsync(at::Tensor& tensor) {
  std::vector<at::Tensor> tensors{tensor};
  return std::make_unique<PendingWork>(impl_->group->allreduce(tensors));
}

void DistributedGroup::Broadcast(std::vector<at::Tensor>& tensors, int root) {
  c10d::BroadcastOptions options;
  options.rootRank = root;
  for (auto& t : tensors) {  // one at a time: Gloo broadcasts a list only when its tensors are alike
    std::vector<at::Tensor> one{t.to(impl_->collective_device).contiguous()};
    PendingWork(impl_->group->broadcast(one, options)).Wait();
    if (!one[0].is_same(t)) t.copy_(one[0]);
  }
}

at::Tensor DistributedGroup::AllGatherRows(const at::Tensor& rows) {
  // Gloo gathers equal shapes only: pad every rank's rows to the longest, then cut each back to its count.
  auto count = torch::full({1}, rows.size(0), torch::TensorOptions(collective_device()).dtype(torch::kLong));
  std::vector<at::Tensor> counts_out(world_size_);
  for (auto& c : counts_out) c = torch::empty_like(count);
  {
    std::vector<std::vector<at::Tensor>> out{counts_out};
    std::vector<at::Tensor> in{count};
    PendingWork(impl_->group->allgather(out, in)).Wait();
    counts_out = out[0];
  }
  int64_t longest = 0;
  for (const auto& c : counts_out) longest = std::max(longest, c.item<int64_t>());
  auto shape = rows.sizes().vec();
  shape[0] = longest;
  auto padded = torch::zeros(shape, rows.options().device(collective_device()));
  padded.narrow(0, 0, rows.size(0)).copy_(rows);
  std::vector<std::vector<at::Tensor>> out(1);
  for (int r = 0; r < world_size_; ++r) out[0].push_back(torch::empty_like(padded));
  std::vector<at::Tensor> in{padded};
  PendingWork(impl_->group->allgather(out, in)).Wait();
  std::vector<at::Tensor> parts;
  for (int r = 0; r < world_size_; ++r) parts.push_back(out[0][r].narrow(0, 0, counts_out[r].item<int64_t>()));
  return torch::cat(parts);
}

c10::Device DistributedGroup::collective_device() const { return impl_->collective_device; }

#else  // no c10d Gloo in this LibTorch

bool DistributedTrainingAvailable() { return false; }

struct DistributedGroup::Impl {};

std::unique_ptr<DistributedGroup> DistributedGroup::Join(const RendezvousSettings& s, c10::Device) {
  ValidateRendezvous(s);
  throw std::runtime_error("this build has no distributed training: LibTorch's c10d Gloo headers (libgloo-dev) "
                           "were not found when it was compiled");
}
std::unique_ptr<DistributedGroup::Pending> DistributedGroup::AllReduceSumAsync(at::Tensor&) {
  throw std::logic_error("no distributed training in this build");
}
void DistributedGroup::Broadcast(std::vector<at::Tensor>&, int) {
  throw std::logic_error("no distributed training in this build");
}
at::Tensor DistributedGroup::AllGatherRows(const at::Tensor&) {
  throw std::logic_error("no distributed training in this build");
}
c10::Device DistributedGroup::collective_device() const { return c10::kCPU; }

#endif

DistributedGroup::DistributedGroup(std::unique_ptr<Impl> impl, int rank, int world_size, std::string backend)
    : impl_(std::move(impl)), rank_(rank), world_size_(world_size), backend_(std::move(backend)) {}

DistributedGroup::~DistributedGroup() = default;

void DistributedGroup::AllReduceSum(at::Tensor& tensor) {
  at::Tensor placed = tensor.to(collective_device()).contiguous();
  AllReduceSumAsync(placed)->Wait();
  if (!placed.is_same(tensor)) tensor.copy_(placed);
}

std::vector<bool> DistributedGroup::AnyRank(const std::vector<bool>& flags) {
  std::vector<float> values(flags.begin(), flags.end());
  auto t = torch::tensor(values);
  AllReduceSum(t);
  t = t.cpu();
  std::vector<bool> any(flags.size());
  for (size_t i = 0; i < flags.size(); ++i) any[i] = t[static_cast<int64_t>(i)].item<float>() > 0.5f;
  return any;
}

}  // namespace facet
