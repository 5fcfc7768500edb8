// A data loader that decodes and augments on worker threads, ahead of the training step.
#pragma once

#include "core/data/augment.h"
#include "core/data/batch_source.h"
#include "core/data/utkface_dataset.h"

#include <atomic>
#include <condition_variable>
#include <exception>
#include <map>
#include <mutex>
#include <thread>
#include <vector>

namespace facet {

struct LoaderOptions {
  int image_size = 64;
  int batch_size = 64;
  bool shuffle = false;
  // With shuffle: 0 shuffles, and every face is seen once an epoch. Above 0, each epoch draws as many faces, with
  // replacement, each with weight (faces of its ethnicity)^-ethnicity_balance: 1 draws every ethnicity equally
  // often, 0.5 halfway there (inverse square root of frequency). Against the data set's bias toward white faces.
  double ethnicity_balance = 0.0;
  bool drop_last = false;       // training drops the last partial batch (as fastai does); validation keeps it
  bool augment = false;
  AugmentOptions augment_options;
  int workers = 2;              // 0: decode on the calling thread inside Next()
  int prefetch_batches = 4;     // batches decoded ahead of the consumer (bounds memory)
  bool pin_memory = false;      // page-locked batches for fast, non-blocking host-to-GPU copies (CUDA only)
  // Data-parallel training: batch_size is the global batch, and this process gets its share `shard` of
  // `num_shards` equal slices of every batch (batch_size must divide evenly). Order and augmentation are those of
  // the one-process run, so the ranks together see exactly what one process would.
  int shard = 0;
  int num_shards = 1;
};

// Thread contract: StartEpoch and Next are called from one consumer thread; the workers are internal.
// Output is deterministic for a given epoch seed, whatever the number of workers: each sample's augmentation
// draws from its own generator, seeded by (epoch seed, position in the epoch).
// An image that cannot be decoded is dropped from its batch, counted and logged once.
class UtkFaceLoader final : public BatchSource {
 public:
  UtkFaceLoader(std::vector<Sample> samples, const LoaderOptions& options);
  ~UtkFaceLoader() override;
  UtkFaceLoader(const UtkFaceLoader&) = delete;
  UtkFaceLoader& operator=(const UtkFaceLoader&) = delete;

  int64_t num_samples() const override { return static_cast<int64_t>(samples_.size()); }
  int64_t batches_per_epoch() const override;
  using BatchSource::StartEpoch;
  void StartEpoch(uint64_t epoch_seed, int64_t first_batch) override;
  std::optional<Batch> Next() override;

  int64_t undecodable_images() const { return undecodable_.load(); }

 private:
  struct Slot {
    std::optional<Batch> batch;  // empty Batch when every image in it failed to decode
    std::exception_ptr error;
  };
  Batch BuildBatch(const std::vector<size_t>& indices, int64_t first_position, uint64_t epoch_seed);
  // This shard's part of a batch: its sample indices and the epoch position of the first. mutex_ held.
  std::vector<size_t> BatchIndicesLocked(int64_t batch_index, int64_t* first_position) const;
  void WorkerLoop();

  // Constant after construction.
  const std::vector<Sample> samples_;
  const LoaderOptions options_;
  const std::vector<double> draw_weights_;  // per sample; empty unless ethnicity_balance > 0
  const Augmenter augmenter_;

  std::atomic<int64_t> undecodable_{0};
  std::mutex mutex_;
  std::condition_variable changed_;
  // Guarded by mutex_.
  bool stopping_ = false;
  uint64_t epoch_generation_ = 0;
  uint64_t epoch_seed_ = 0;
  std::vector<size_t> order_;
  int64_t next_to_claim_ = 0;
  int64_t next_to_return_ = 0;
  int64_t num_batches_ = 0;
  std::map<int64_t, Slot> ready_;

  std::vector<std::thread> workers_;
};

}  // namespace facet
