#include "server/batcher.h"

#include "server/metrics.h"
#include "server/status.h"

#include <spdlog/spdlog.h>
#include <torch/torch.h>

namespace facet::server {

DynamicBatcher::DynamicBatcher(const BatcherOptions& options, Metrics* metrics)
    : options_(options), metrics_(metrics) {
  if (options.max_batch_size < 1) throw std::invalid_argument("max_batch_size must be >= 1");
  thread_ = std::thread([this] { Loop(); });
}

DynamicBatcher::~DynamicBatcher() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  arrived_.notify_all();
  thread_.join();
  for (auto& item : queue_) item.done(nullptr, grpc::StatusCode::UNAVAILABLE, "server is shutting down");
}

bool DynamicBatcher::Enqueue(std::vector<BatchItem> items) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (stopping_ || queue_.size() + items.size() > options_.max_queued_images) return false;
    const auto now = Clock::now();
    for (auto& item : items) {
      item.enqueued = now;
      queue_.push_back(std::move(item));
    }
  }
  arrived_.notify_one();
  return true;
}

size_t DynamicBatcher::queued() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return queue_.size();
}

void DynamicBatcher::Loop() {
  while (true) {
    std::vector<BatchItem> batch;
    {
      std::unique_lock<std::mutex> lock(mutex_);
      arrived_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
      if (stopping_) return;
      // Wait for the batch to fill, but never longer than max_queue_delay after its oldest image arrived.
      const auto flush_at = queue_.front().enqueued + options_.max_queue_delay;
      arrived_.wait_until(lock, flush_at, [&] {
        return stopping_ || queue_.size() >= static_cast<size_t>(options_.max_batch_size);
      });
      if (stopping_) return;
      // One forward pass serves one model: take the leading run of items that share the oldest item's model.
      const auto* model = queue_.front().model.get();
      while (!queue_.empty() && batch.size() < static_cast<size_t>(options_.max_batch_size) &&
             queue_.front().model.get() == model) {
        batch.push_back(std::move(queue_.front()));
        queue_.pop_front();
      }
    }
    RunBatch(batch);
  }
}

void DynamicBatcher::RunBatch(std::vector<BatchItem>& batch) {
  const auto now = Clock::now();
  std::vector<BatchItem*> live;
  std::vector<at::Tensor> inputs;
  for (auto& item : batch) {
    if (metrics_) metrics_->RecordQueueTime(std::chrono::duration<double>(now - item.enqueued).count());
    if (item.deadline <= now) {  // nobody is waiting for it any more: do not compute it
      item.done(nullptr, grpc::StatusCode::DEADLINE_EXCEEDED, "deadline exceeded while queued");
      continue;
    }
    live.push_back(&item);
    inputs.push_back(item.input);
  }
  if (live.empty()) return;
  try {
    const auto start = Clock::now();
    const auto predictions = live.front()->model->predictor->PredictTensor(torch::stack(inputs));
    if (metrics_) {
      metrics_->RecordBatch(static_cast<int>(live.size()), std::chrono::duration<double>(Clock::now() - start).count());
    }
    for (size_t i = 0; i < live.size(); ++i) live[i]->done(&predictions[i], grpc::StatusCode::OK, "");
  } catch (...) {  // the shared mapping: out of memory is RESOURCE_EXHAUSTED, a LibTorch failure INTERNAL
    const grpc::Status status = CurrentExceptionToStatus();
    spdlog::error("batch of {} failed: {}", live.size(), status.error_message());
    for (auto* item : live) item->done(nullptr, status.error_code(), "inference failed: " + status.error_message());
  }
}

}  // namespace facet::server
