#include "server/batcher.h"
#include "server/metrics.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <atomic>
#include <condition_variable>
#include <mutex>

namespace facet::server {
namespace {

std::shared_ptr<const ServingModel> TinyModel(const std::string& id, uint64_t seed) {
  torch::manual_seed(seed);
  auto model = std::make_shared<ServingModel>();
  model->id = id;
  model->predictor = std::make_unique<Predictor>(MultiTaskNet(ResNetOptions{Arch::kResNet18, 4}), 32,
                                                 PredictorOptions{"cpu"});
  return model;
}

// Collects the answers of a group of items and lets the test wait for all of them.
struct Answers {
  std::mutex mutex;
  std::condition_variable done;
  std::vector<grpc::StatusCode> codes;
  std::vector<double> ages;
  BatchItem Item(std::shared_ptr<const ServingModel> model, at::Tensor input, Clock::time_point deadline) {
    return BatchItem{input, std::move(model), deadline,
                     [this](const Prediction* p, grpc::StatusCode code, const std::string&) {
                       std::lock_guard<std::mutex> lock(mutex);
                       codes.push_back(code);
                       ages.push_back(p ? p->age_years : -1);
                       done.notify_all();
                     }};
  }
  void WaitFor(size_t n) {
    std::unique_lock<std::mutex> lock(mutex);
    ASSERT_TRUE(done.wait_for(lock, std::chrono::seconds(30), [&] { return codes.size() >= n; }));
  }
};

TEST(DynamicBatcher, GroupsQueuedImagesIntoBatchesOfAtMostMaxBatchSize) {
  Metrics metrics("");
  BatcherOptions options;
  options.max_batch_size = 4;
  options.max_queue_delay = std::chrono::milliseconds(200);
  DynamicBatcher batcher(options, &metrics);
  const auto model = TinyModel("a", 1);
  Answers answers;
  std::vector<BatchItem> items;
  for (int i = 0; i < 10; ++i) items.push_back(answers.Item(model, torch::randn({3, 32, 32}), Clock::time_point::max()));
  ASSERT_TRUE(batcher.Enqueue(std::move(items)));
  answers.WaitFor(10);
  for (auto code : answers.codes) EXPECT_EQ(code, grpc::StatusCode::OK);
  // 10 images at most 4 a batch: batches of 4, 4 and 2 (the last one flushed by the delay).
  const std::string text = metrics.Scrape();
  EXPECT_NE(text.find("facet_predict_batch_size_count 3"), std::string::npos) << text;
  EXPECT_NE(text.find("facet_predict_batch_size_sum 10"), std::string::npos) << text;
}

TEST(DynamicBatcher, RefusesWhatWouldOverflowItsQueueAndTakesNothingThen) {
  BatcherOptions options;
  options.max_queued_images = 3;
  options.max_queue_delay = std::chrono::seconds(2);
  options.max_batch_size = 64;  // nothing runs before the delay: the queue stays full
  DynamicBatcher batcher(options, nullptr);
  const auto model = TinyModel("a", 1);
  Answers answers;
  std::vector<BatchItem> two, also_two;
  for (int i = 0; i < 2; ++i) two.push_back(answers.Item(model, torch::randn({3, 32, 32}), Clock::time_point::max()));
  for (int i = 0; i < 2; ++i) also_two.push_back(answers.Item(model, torch::randn({3, 32, 32}), Clock::time_point::max()));
  EXPECT_TRUE(batcher.Enqueue(std::move(two)));
  EXPECT_FALSE(batcher.Enqueue(std::move(also_two)));
  EXPECT_EQ(batcher.queued(), 2u);
  answers.WaitFor(2);
}

TEST(DynamicBatcher, DropsExpiredImagesWithoutComputingThem) {
  BatcherOptions options;
  options.max_queue_delay = std::chrono::milliseconds(50);
  Metrics metrics("");
  DynamicBatcher batcher(options, &metrics);
  const auto model = TinyModel("a", 1);
  Answers answers;
  std::vector<BatchItem> items;
  items.push_back(answers.Item(model, torch::randn({3, 32, 32}), Clock::now() + std::chrono::milliseconds(1)));
  ASSERT_TRUE(batcher.Enqueue(std::move(items)));
  answers.WaitFor(1);
  EXPECT_EQ(answers.codes[0], grpc::StatusCode::DEADLINE_EXCEEDED);
  EXPECT_EQ(metrics.Scrape().find("facet_predict_batch_size_count 1"), std::string::npos) << "nothing was computed";
}

TEST(DynamicBatcher, EachImageIsAnsweredByTheModelItWasQueuedFor) {
  BatcherOptions options;
  options.max_queue_delay = std::chrono::milliseconds(100);
  DynamicBatcher batcher(options, nullptr);
  const auto a = TinyModel("a", 1), b = TinyModel("b", 2);
  const auto input = torch::randn({3, 32, 32});
  const double age_a = a->predictor->PredictTensor(input.unsqueeze(0))[0].age_years;
  const double age_b = b->predictor->PredictTensor(input.unsqueeze(0))[0].age_years;
  ASSERT_NE(age_a, age_b);
  Answers answers;
  std::vector<BatchItem> items;
  for (int i = 0; i < 6; ++i) items.push_back(answers.Item(i % 2 ? b : a, input, Clock::time_point::max()));
  ASSERT_TRUE(batcher.Enqueue(std::move(items)));
  answers.WaitFor(6);
  std::lock_guard<std::mutex> lock(answers.mutex);
  int seen_a = 0, seen_b = 0;
  for (double age : answers.ages) {
    seen_a += std::abs(age - age_a) < 1e-6;
    seen_b += std::abs(age - age_b) < 1e-6;
  }
  EXPECT_EQ(seen_a, 3);
  EXPECT_EQ(seen_b, 3);
}

}  // namespace
}  // namespace facet::server
