// What the trainer reads batches from. The OpenCV loader implements it; tests can feed tensors directly.
// Thread contract: one consumer thread calls StartEpoch and Next; an implementation may decode on threads of its own.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <optional>

namespace facet {

struct Batch {
  at::Tensor images;     // (N,3,H,W) float, ImageNet-normalised
  at::Tensor age;        // (N) float, scaled log-age target
  at::Tensor gender;     // (N) int64
  at::Tensor ethnicity;  // (N) int64
  int64_t size() const { return images.defined() ? images.size(0) : 0; }
};

class BatchSource {
 public:
  virtual ~BatchSource() = default;
  virtual int64_t num_samples() const = 0;
  virtual int64_t batches_per_epoch() const = 0;
  // Begins an epoch at batch `first_batch` (0: its start); the order and augmentation of an epoch depend only on
  // epoch_seed (so a run resumed mid-epoch sees the same batches as an uninterrupted one).
  virtual void StartEpoch(uint64_t epoch_seed, int64_t first_batch) = 0;
  void StartEpoch(uint64_t epoch_seed) { StartEpoch(epoch_seed, 0); }
  // The next batch of this epoch, or nullopt at its end.
  virtual std::optional<Batch> Next() = 0;
};

}  // namespace facet
