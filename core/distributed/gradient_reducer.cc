#include "core/distributed/gradient_reducer.h"

#include <torch/torch.h>

#include <stdexcept>

namespace facet {

GradientReducer::GradientReducer(DistributedGroup& group, std::vector<at::Tensor> params, int64_t bucket_bytes)
    : group_(group) {
  // Reverse order: backward produces the heads' gradients first and the stem's last.
  std::vector<int64_t> bucket_numel;
  for (auto it = params.rbegin(); it != params.rend(); ++it) {
    const at::Tensor& p = *it;
    const int64_t bytes = p.numel() * static_cast<int64_t>(p.element_size());
    const bool fits = !bucket_numel.empty() && buckets_.back().buffer.scalar_type() == p.scalar_type() &&

                      (bucket_numel.back() * static_cast<int64_t>(p.element_size()) + bytes <= bucket_bytes);
    if (!fits) {
      buckets_.push_back(Bucket{at::empty({0}, p.options().device(group.collective_device())), 0, 0});
      bucket_numel.push_back(0);
    }
    slots_.push_back(Slot{p, buckets_.size() - 1, bucket_numel.back(), -1});
    bucket_numel.back() += p.numel();
    ++buckets_.back().slots;
  }
  for (size_t b = 0; b < buckets_.size(); ++b) {
    buckets_[b].buffer = torch::zeros({bucket_numel[b]}, buckets_[b].buffer.options().requires_grad(false));
  }
  slot_ready_.assign(slots_.size(), false);
  for (size_t i = 0; i < slots_.size(); ++i) {
    slots_[i].hook = slots_[i].param.register_hook([this, i](const at::Tensor& grad) { OnGradient(i, grad); });
  }
}

GradientReducer::~GradientReducer() {
  for (auto& slot : slots_) {
    if (slot.hook >= 0) slot.param.remove_hook(static_cast<unsigned>(slot.hook));
  }
}

void GradientReducer::PrepareForBackward() {
  std::lock_guard<std::mutex> lock(mutex_);
  slot_ready_.assign(slots_.size(), false);
  for (auto& bucket : buckets_) bucket.ready = 0;
  next_to_launch_ = 0;
  pending_.clear();
}

void GradientReducer::OnGradient(size_t i, const at::Tensor& grad) {
  std::lock_guard<std::mutex> lock(mutex_);
  const Slot& slot = slots_[i];
  if (slot_ready_[i]) throw std::logic_error("GradientReducer: a gradient arrived twice in one backward pass");
  auto view = buckets_[slot.bucket].buffer.narrow(0, slot.offset, slot.param.numel()).view(slot.param.sizes());
  // Pre-divide, so that the sum over ranks is the mean.
  at::NoGradGuard no_grad;
  view.copy_(grad);
  view.div_(static_cast<double>(group_.world_size()));
  MarkReadyLocked(i);
}

void GradientReducer::MarkReadyLocked(size_t i) {
  slot_ready_[i] = true;
  ++buckets_[slots_[i].bucket].ready;
  LaunchReadyBucketsLocked();
}

void GradientReducer::LaunchReadyBucketsLocked() {
  while (next_to_launch_ < buckets_.size() && buckets_[next_to_launch_].ready == buckets_[next_to_launch_].slots) {
    pending_.push_back(group_.AllReduceSumAsync(buckets_[next_to_launch_].buffer));
    ++next_to_launch_;
  }
}

void GradientReducer::FinishBackward() {
  std::vector<std::unique_ptr<DistributedGroup::Pending>> pending;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    for (size_t i = 0; i < slots_.size(); ++i) {
      if (slot_ready_[i]) continue;
      buckets_[slots_[i].bucket].buffer.narrow(0, slots_[i].offset, slots_[i].param.numel()).zero_();
      MarkReadyLocked(i);
    }
    pending = std::move(pending_);
    pending_.clear();
  }
  for (auto& p : pending) p->Wait();
  at::NoGradGuard no_grad;
  for (auto& slot : slots_) {
    auto mean = buckets_[slot.bucket].buffer.narrow(0, slot.offset, slot.param.numel()).view(slot.param.sizes());
    if (slot.param.grad().defined()) {
      slot.param.mutable_grad().copy_(mean);
    } else {
      slot.param.mutable_grad() = mean.to(slot.param.options(), /*non_blocking=*/false, /*copy=*/true);
    }
  }
}

}  // namespace facet
