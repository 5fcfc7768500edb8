#include "server/model_follower.h"

#include "server/status.h"

#include <spdlog/spdlog.h>

#include <filesystem>

namespace facet::server {

namespace fs = std::filesystem;

ModelFollower::ModelFollower(FollowerOptions options, ModelRegistry& models)
    : options_(std::move(options)), models_(models), primary_(options_.primary) {
  fs::create_directories(options_.download_dir);
  thread_ = std::thread([this] { Run(); });
}

ModelFollower::~ModelFollower() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  watch_.Cancel();
  stopped_.notify_all();
  thread_.join();
}

void ModelFollower::Run() {
  auto backoff = std::chrono::milliseconds(200);
  while (true) {
    try {
      primary_.WatchActiveModel(
          [&](const v1::Model& model) {
            backoff = std::chrono::milliseconds(200);  // the primary answers: reset
            Follow(model);
          },
          &watch_);
    } catch (const std::exception& e) {
      std::lock_guard<std::mutex> lock(mutex_);
      if (!stopping_) spdlog::warn("following primary {}: {}; retrying in {} ms", options_.primary.address, e.what(),
                                   backoff.count());
    }
    std::unique_lock<std::mutex> lock(mutex_);
    if (stopped_.wait_for(lock, backoff, [&] { return stopping_; })) return;
    backoff = std::min(backoff * 2, options_.max_backoff);
  }
}

void ModelFollower::Follow(const v1::Model& model) {
  const auto active = models_.Active();
  if (active && active->id == model.id()) return;
  const auto started = std::chrono::steady_clock::now();
  if (!models_.Has(model.id(), model.sha256())) {
    const std::string partial = (fs::path(options_.download_dir) / (model.id() + ".download")).string();
    try {
      const std::string announced = primary_.DownloadModel(model.id(), partial, options_.max_model_bytes);
      if (announced != model.sha256()) {
        throw std::runtime_error("the download announced SHA-256 " + announced + " but the model record says " +
                                 model.sha256());
      }
      models_.AddReplica(model, partial);
    } catch (...) {
      std::error_code ignored;
      fs::remove(partial, ignored);
      throw;  // the watch restarts after a backoff and tries again; the current model keeps serving
    }
  }
  models_.Activate(model.id());
  spdlog::info("following primary {}: now serving model {} ({:.2f} s after it was announced)",
               options_.primary.address, model.id(),
               std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count());
}

}  // namespace facet::server
