// Shared test helpers: temporary folders, the shared UTKFace data, the Python peer, small in-memory data.
#pragma once

#include "core/data/batch_source.h"

#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace facet::testing {

// The whole file as bytes (throws, naming the path, when it cannot be read).
std::string ReadFile(const std::string& path);

// What `call` threw (its what()), or "" when it returned normally.
std::string MessageOf(const std::function<void()>& call);

// A fresh folder under the system temp dir, removed with everything in it when the object goes away.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  std::string operator/(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

// ../shared/data/<name> beside the checkout, or nullopt when it is absent (tests then GTEST_SKIP).
std::optional<std::string> SharedDataDir(const std::string& name);
std::string SharedReferenceScript();  // ../shared/reference/mtl_reference.py ("" when absent)

// Runs a shell command, returns its exit status; stdout and stderr together in *output.
int RunCommand(const std::string& command, std::string* output);

// True when /usr/bin/python3 can import torch and torchvision (Debian's python3-torch).
bool PythonHasTorch();
// Runs /usr/bin/python3 with the script text and arguments; returns its exit status, output in *output.
int RunPython(const std::string& script, const std::vector<std::string>& args, std::string* output);

// Batches from tensors already in memory: a BatchSource without OpenCV, for trainer tests.
class TensorBatchSource final : public BatchSource {
 public:
  TensorBatchSource(Batch all, int64_t batch_size, bool shuffle);
  int64_t num_samples() const override { return all_.size(); }
  int64_t batches_per_epoch() const override;
  using BatchSource::StartEpoch;
  void StartEpoch(uint64_t epoch_seed, int64_t first_batch) override;
  std::optional<Batch> Next() override;

 private:
  Batch all_;
  int64_t batch_size_;
  bool shuffle_;
  at::Tensor order_;
  int64_t next_ = 0;
};

}  // namespace facet::testing
