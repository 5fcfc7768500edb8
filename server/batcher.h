// Dynamic batching for Predict, in the manner of Triton's dynamic batcher: requests queue, and one thread runs a
// forward pass on up to max_batch_size images, waiting at most max_queue_delay for a batch to fill.
#pragma once

#include "core/infer/predictor.h"
#include "server/model_registry.h"

#include <ATen/core/Tensor.h>
#include <grpcpp/support/status.h>

#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

namespace facet::server {

class Metrics;

struct BatcherOptions {
  int max_batch_size = 64;  // the throughput ceiling is flat from 32 to 64 on CPU; 64 keeps the GPU busier
  std::chrono::microseconds max_queue_delay{2000};
  size_t max_queued_images = 1024;  // past this, Enqueue refuses (RESOURCE_EXHAUSTED)
};

using Clock = std::chrono::steady_clock;

// One preprocessed image waiting for the model it was preprocessed for.
struct BatchItem {
  at::Tensor input;  // (3,S,S)
  std::shared_ptr<const ServingModel> model;
  Clock::time_point deadline;
  // Called once from the batcher thread: the prediction, or an error (then prediction is unset).
  std::function<void(const Prediction* prediction, grpc::StatusCode code, const std::string& error)> done;
  Clock::time_point enqueued{};
};

// Thread-safe: Enqueue from any number of gRPC threads; `done` runs on the batcher's own thread. Nothing throws
// out of it: a failed forward pass answers its items with the code server/status.h gives its error
// (RESOURCE_EXHAUSTED when out of memory, INTERNAL for LibTorch's).
class DynamicBatcher {
 public:
  DynamicBatcher(const BatcherOptions& options, Metrics* metrics);
  ~DynamicBatcher();  // answers what is still queued with UNAVAILABLE, then joins

  // All or nothing: returns false (and takes nothing) when the items would overflow the queue.
  bool Enqueue(std::vector<BatchItem> items);
  size_t queued() const;

 private:
  void Loop();
  void RunBatch(std::vector<BatchItem>& batch);

  const BatcherOptions options_;
  Metrics* const metrics_;  // may be null
  mutable std::mutex mutex_;
  std::condition_variable arrived_;
  std::deque<BatchItem> queue_;  // guarded by mutex_
  bool stopping_ = false;        // guarded by mutex_
  std::thread thread_;
};

}  // namespace facet::server
