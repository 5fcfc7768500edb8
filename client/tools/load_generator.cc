#include "client/tools/load_generator.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <mutex>
#include <thread>

namespace facet::client {
namespace {

using Clock = std::chrono::steady_clock;

double Percentile(const std::vector<double>& sorted, double q) {
  if (sorted.empty()) return 0;
  return sorted[std::min(sorted.size() - 1, static_cast<size_t>(q * static_cast<double>(sorted.size())))];
}

}  // namespace

LoadResult RunPredictLoad(const ConnectionOptions& connection, const std::vector<std::string>& images,
                          const LoadOptions& options) {
  if (images.empty()) throw std::invalid_argument("no images to send");
  if (options.concurrency < 1 || options.images_per_request < 1) throw std::invalid_argument("bad load options");
  const auto start = Clock::now();
  const auto measure_from = start + std::chrono::duration_cast<Clock::duration>(
                                        std::chrono::duration<double>(options.warm_up_seconds));
  const auto stop_at = measure_from + std::chrono::duration_cast<Clock::duration>(
                                          std::chrono::duration<double>(options.seconds));
  std::mutex mutex;
  std::vector<double> latencies_ms;
  LoadResult result;
  result.concurrency = options.concurrency;
  std::atomic<size_t> next_image{0};
  std::vector<std::thread> callers;
  for (int c = 0; c < options.concurrency; ++c) {
    callers.emplace_back([&] {
      FacetClient client(connection);
      std::vector<double> mine;
      std::map<std::string, int64_t> my_errors;
      int64_t my_requests = 0, my_images = 0;
      while (Clock::now() < stop_at) {
        v1::PredictRequest request;
        for (int i = 0; i < options.images_per_request; ++i) {
          request.add_images(images[next_image.fetch_add(1) % images.size()]);
        }
        const auto sent = Clock::now();
        std::string error;
        try {
          client.Predict(request);
        } catch (const RpcError& e) {
          error = StatusCodeName(e.code());
        }
        const auto done = Clock::now();
        if (sent < measure_from || done > stop_at) continue;
        if (!error.empty()) {
          ++my_errors[error];
          continue;
        }
        mine.push_back(std::chrono::duration<double, std::milli>(done - sent).count());
        ++my_requests;
        my_images += options.images_per_request;
      }
      std::lock_guard<std::mutex> lock(mutex);
      latencies_ms.insert(latencies_ms.end(), mine.begin(), mine.end());
      result.requests += my_requests;
      result.images += my_images;
      for (const auto& [code, n] : my_errors) result.errors[code] += n;
    });
  }
  for (auto& t : callers) t.join();
  std::sort(latencies_ms.begin(), latencies_ms.end());
  result.seconds = options.seconds;
  result.images_per_s = result.images / options.seconds;
  result.p50_ms = Percentile(latencies_ms, 0.50);
  result.p90_ms = Percentile(latencies_ms, 0.90);
  result.p99_ms = Percentile(latencies_ms, 0.99);
  result.max_ms = latencies_ms.empty() ? 0 : latencies_ms.back();
  return result;
}

}  // namespace facet::client
