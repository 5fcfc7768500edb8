// A Predict replica's link to its primary: watches the primary's active model and, whenever it changes,
// downloads it (unless already here), verifies its SHA-256, and activates it. The replica keeps serving the model
// it has while the primary is unreachable, and reconnects with backoff. The work runs on a thread of its own;
// the destructor stops it at any point of a watch (connecting, streaming, failing) and waits for it. The
// constructor throws std::filesystem::filesystem_error when the download folder cannot be made.
#pragma once

#include "client/facet_client.h"
#include "server/model_registry.h"

#include <condition_variable>
#include <mutex>
#include <string>
#include <thread>

namespace facet::server {

struct FollowerOptions {
  client::ConnectionOptions primary;  // address and credentials of the primary
  std::string download_dir;           // partial downloads live here until verified
  int64_t max_model_bytes = 2LL << 30;
  std::chrono::milliseconds max_backoff{5000};
};

class ModelFollower {
 public:
  ModelFollower(FollowerOptions options, ModelRegistry& models);
  ~ModelFollower();  // stops the watch and waits for the thread
  ModelFollower(const ModelFollower&) = delete;
  ModelFollower& operator=(const ModelFollower&) = delete;

 private:
  void Run();
  void Follow(const v1::Model& model);

  const FollowerOptions options_;
  ModelRegistry& models_;
  client::FacetClient primary_;
  client::CallCanceller watch_;  // cancels the open watch on stop
  std::mutex mutex_;
  std::condition_variable stopped_;
  bool stopping_ = false;  // guarded by mutex_
  std::thread thread_;
};

}  // namespace facet::server
