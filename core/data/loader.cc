#include "core/data/loader.h"

#include "core/data/image_io.h"
#include "core/util/seed.h"

#include <spdlog/spdlog.h>
#include <torch/torch.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <numeric>
#include <random>

namespace facet {
namespace {

std::vector<double> EthnicityDrawWeights(const std::vector<Sample>& samples, double balance) {
  if (balance <= 0.0) return {};
  std::array<int64_t, kNumEthnicities> count{};
  for (const auto& s : samples) ++count[s.labels.ethnicity];
  std::vector<double> weights;
  weights.reserve(samples.size());
  for (const auto& s : samples) weights.push_back(std::pow(static_cast<double>(count[s.labels.ethnicity]), -balance));
  return weights;
}

// Runs in the member initialisers, so that bad options are refused before anything is built from them.
const LoaderOptions& Checked(const LoaderOptions& options) {
  if (!(options.ethnicity_balance >= 0.0 && options.ethnicity_balance <= 1.0)) {
    throw std::invalid_argument("loader ethnicity_balance must be in [0, 1]");
  }
  if (options.batch_size < 1) throw std::invalid_argument("loader batch_size must be >= 1");
  if (options.num_shards < 1 || options.shard < 0 || options.shard >= options.num_shards ||
      options.batch_size % options.num_shards != 0) {
    throw std::invalid_argument("loader shard " + std::to_string(options.shard) + " of " +
                                std::to_string(options.num_shards) + " cannot split batches of " +
                                std::to_string(options.batch_size) + " evenly");
  }
  if (options.workers < 0 || options.prefetch_batches < 1) {
    throw std::invalid_argument("loader needs workers >= 0 and prefetch_batches >= 1");
  }
  return options;
}

}  // namespace

UtkFaceLoader::UtkFaceLoader(std::vector<Sample> samples, const LoaderOptions& options)
    : samples_(std::move(samples)),
      options_(Checked(options)),
      draw_weights_(options.shuffle ? EthnicityDrawWeights(samples_, options.ethnicity_balance)
                                    : std::vector<double>{}),
      augmenter_(options.augment_options, options.image_size) {
  for (int i = 0; i < options.workers; ++i) workers_.emplace_back([this] { WorkerLoop(); });
}

UtkFaceLoader::~UtkFaceLoader() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  changed_.notify_all();
  for (auto& t : workers_) t.join();
}

int64_t UtkFaceLoader::batches_per_epoch() const {
  const auto n = static_cast<int64_t>(samples_.size());
  return options_.drop_last ? n / options_.batch_size : (n + options_.batch_size - 1) / options_.batch_size;
}

void UtkFaceLoader::StartEpoch(uint64_t epoch_seed, int64_t first_batch) {
  std::vector<size_t> order(samples_.size());
  std::mt19937_64 rng(epoch_seed);
  if (!draw_weights_.empty()) {
    std::discrete_distribution<size_t> draw(draw_weights_.begin(), draw_weights_.end());
    for (auto& index : order) index = draw(rng);
  } else {
    std::iota(order.begin(), order.end(), 0);
    if (options_.shuffle) std::shuffle(order.begin(), order.end(), rng);
  }
  {
    std::lock_guard<std::mutex> lock(mutex_);
    ++epoch_generation_;  // batches of an abandoned epoch still being built are discarded on arrival
    epoch_seed_ = epoch_seed;
    order_ = std::move(order);
    num_batches_ = batches_per_epoch();
    next_to_claim_ = next_to_return_ = std::clamp<int64_t>(first_batch, 0, num_batches_);
    ready_.clear();
  }
  changed_.notify_all();
}

std::vector<size_t> UtkFaceLoader::BatchIndicesLocked(int64_t batch_index, int64_t* first_position) const {
  const size_t batch_begin = static_cast<size_t>(batch_index) * options_.batch_size;
  const size_t batch_end = std::min(order_.size(), batch_begin + options_.batch_size);
  // A partial last batch (validation keeps it) is split as evenly as possible.
  const size_t n = batch_end - batch_begin, shards = static_cast<size_t>(options_.num_shards);
  const size_t begin = batch_begin + n * options_.shard / shards;
  const size_t end = batch_begin + n * (options_.shard + 1) / shards;
  *first_position = static_cast<int64_t>(begin);
  return std::vector<size_t>(order_.begin() + begin, order_.begin() + end);
}

Batch UtkFaceLoader::BuildBatch(const std::vector<size_t>& indices, int64_t first_position, uint64_t epoch_seed) {
  const int s = options_.image_size;
  const auto float_options = torch::TensorOptions().dtype(torch::kFloat).pinned_memory(options_.pin_memory);
  auto images = torch::empty({static_cast<int64_t>(indices.size()), 3, s, s}, float_options);
  std::vector<float> age;
  std::vector<int64_t> gender, ethnicity;
  int64_t kept = 0;
  for (size_t k = 0; k < indices.size(); ++k) {
    const Sample& sample = samples_[indices[k]];
    cv::Mat bgr;
    try {
      bgr = ReadImageFile(sample.path);
    } catch (const ImageDecodeError& e) {
      if (undecodable_.fetch_add(1) < 20) spdlog::warn("skipping undecodable image: {}", e.what());
      continue;
    }
    std::mt19937_64 rng(MixSeed(epoch_seed, static_cast<uint64_t>(first_position) + k));
    augmenter_.Apply(bgr, options_.augment, rng, images[kept].data_ptr<float>());
    age.push_back(static_cast<float>(AgeToTarget(sample.labels.age)));
    gender.push_back(sample.labels.gender);
    ethnicity.push_back(sample.labels.ethnicity);
    ++kept;
  }
  if (kept == 0) return Batch{};
  return Batch{images.narrow(0, 0, kept), torch::tensor(age), torch::tensor(gender), torch::tensor(ethnicity)};
}

void UtkFaceLoader::WorkerLoop() {
  while (true) {
    std::vector<size_t> indices;
    int64_t batch_index = 0, first_position = 0;
    uint64_t generation = 0, seed = 0;
    {
      std::unique_lock<std::mutex> lock(mutex_);
      changed_.wait(lock, [&] {
        return stopping_ ||
               (next_to_claim_ < num_batches_ && next_to_claim_ < next_to_return_ + options_.prefetch_batches);
      });
      if (stopping_) return;
      batch_index = next_to_claim_++;
      generation = epoch_generation_;
      seed = epoch_seed_;
      indices = BatchIndicesLocked(batch_index, &first_position);
    }
    Slot slot;
    try {
      slot.batch = BuildBatch(indices, first_position, seed);
    } catch (...) {
      slot.error = std::current_exception();
    }
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (generation != epoch_generation_) continue;
      ready_[batch_index] = std::move(slot);
    }
    changed_.notify_all();
  }
}

std::optional<Batch> UtkFaceLoader::Next() {
  while (true) {
    Slot slot;
    {
      std::unique_lock<std::mutex> lock(mutex_);
      if (next_to_return_ >= num_batches_) return std::nullopt;
      if (workers_.empty()) {
        const int64_t index = next_to_return_++;
        int64_t first_position = 0;
        const std::vector<size_t> indices = BatchIndicesLocked(index, &first_position);
        const uint64_t seed = epoch_seed_;
        lock.unlock();
        Batch batch = BuildBatch(indices, first_position, seed);
        if (batch.size() > 0) return batch;
        continue;
      }
      changed_.wait(lock, [&] { return ready_.count(next_to_return_) > 0; });
      auto it = ready_.find(next_to_return_);
      slot = std::move(it->second);
      ready_.erase(it);
      ++next_to_return_;
    }
    changed_.notify_all();  // a prefetch slot is free
    if (slot.error) std::rethrow_exception(slot.error);
    if (slot.batch && slot.batch->size() > 0) return slot.batch;
  }
}

}  // namespace facet
