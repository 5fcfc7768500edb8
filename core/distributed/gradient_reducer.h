// Averages gradients over a DistributedGroup the way DistributedDataParallel does: parameters are packed into
// buckets in reverse order (roughly the order backward produces their gradients), and each bucket's all-reduce
// starts from a gradient hook as soon as its last gradient is ready, so communication overlaps the rest of the
// backward pass. Buckets are launched in index order on every rank (collectives must match across ranks).
#pragma once

#include "core/distributed/distributed_group.h"

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <memory>
#include <mutex>
#include <vector>

namespace facet {

class GradientReducer {
 public:
  static constexpr int64_t kDefaultBucketBytes = 25 << 20;  // DistributedDataParallel's default

  // `params`: those that will receive gradients (requires_grad), identical in shape and order on every rank.
  GradientReducer(DistributedGroup& group, std::vector<at::Tensor> params,
                  int64_t bucket_bytes = kDefaultBucketBytes);
  ~GradientReducer();  // removes the hooks
  GradientReducer(const GradientReducer&) = delete;
  GradientReducer& operator=(const GradientReducer&) = delete;

  // Before each backward pass.
  void PrepareForBackward();
  // After it: reduces what the hooks have not (a parameter the graph did not reach counts as a zero gradient),
  // waits, and leaves every parameter's .grad equal to the mean over ranks.
  void FinishBackward();

  size_t num_buckets() const { return buckets_.size(); }

 private:
  struct Slot {
    at::Tensor param;
    size_t bucket = 0;
    int64_t offset = 0;  // into the bucket's buffer
    int hook = -1;
  };
  struct Bucket {
    at::Tensor buffer;  // flat, the parameters' dtype, on the group's collective device
    size_t slots = 0;   // parameters in it
    size_t ready = 0;   // of which have their gradient copied in this step
  };
  void OnGradient(size_t slot, const at::Tensor& grad);
  void MarkReadyLocked(size_t slot);  // mutex_ held
  void LaunchReadyBucketsLocked();

  DistributedGroup& group_;
  std::vector<Slot> slots_;
  std::vector<Bucket> buckets_;
  std::mutex mutex_;  // hooks run on autograd's threads
  std::vector<bool> slot_ready_;
  size_t next_to_launch_ = 0;
  std::vector<std::unique_ptr<DistributedGroup::Pending>> pending_;
};

}  // namespace facet
