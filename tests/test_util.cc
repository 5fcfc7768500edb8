#include "tests/test_util.h"

#include "core/util/file_util.h"

#include <torch/torch.h>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <sys/wait.h>
#include <unistd.h>

namespace facet::testing {

namespace fs = std::filesystem;

std::string ReadFile(const std::string& path) {
  const std::vector<char> bytes = ReadFileBytes(path);
  return std::string(bytes.begin(), bytes.end());
}

std::string MessageOf(const std::function<void()>& call) {
  try {
    call();
  } catch (const std::exception& e) {
    return e.what();
  }
  return "";
}

TempDir::TempDir() {
  std::string pattern = (fs::temp_directory_path() / "facet-test-XXXXXX").string();
  if (!::mkdtemp(pattern.data())) throw std::runtime_error("mkdtemp failed");
  path_ = pattern;
}

TempDir::~TempDir() {
  std::error_code ec;
  fs::remove_all(path_, ec);
}

std::optional<std::string> SharedDataDir(const std::string& name) {
  const fs::path dir = fs::path(FACET_SOURCE_DIR) / ".." / "shared" / "data" / name;
  if (!fs::is_directory(dir)) return std::nullopt;
  return fs::canonical(dir).string();
}

std::string SharedReferenceScript() {
  const fs::path script = fs::path(FACET_SOURCE_DIR) / ".." / "shared" / "reference" / "mtl_reference.py";
  return fs::exists(script) ? fs::canonical(script).string() : "";
}

namespace {

std::string ShellQuote(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

}  // namespace

int RunCommand(const std::string& command, std::string* output) {
  FILE* pipe = ::popen((command + " 2>&1").c_str(), "r");
  if (!pipe) return -1;
  std::array<char, 4096> buffer;
  std::string text;
  size_t n;
  while ((n = std::fread(buffer.data(), 1, buffer.size(), pipe)) > 0) text.append(buffer.data(), n);
  const int status = ::pclose(pipe);
  if (output) *output = text;
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

int RunPython(const std::string& script, const std::vector<std::string>& args, std::string* output) {
  TempDir dir;
  const std::string path = dir / "script.py";
  std::ofstream(path) << script;
  std::string command = std::string(FACET_PYTHON) + " " + ShellQuote(path);
  for (const auto& a : args) command += " " + ShellQuote(a);
  return RunCommand(command, output);
}

bool PythonHasTorch() {
  static const bool has = [] {
    if (!fs::exists(FACET_PYTHON)) return false;
    return RunPython("import torch, torchvision\n", {}, nullptr) == 0;
  }();
  return has;
}

TensorBatchSource::TensorBatchSource(Batch all, int64_t batch_size, bool shuffle)
    : all_(std::move(all)), batch_size_(batch_size), shuffle_(shuffle) {
  StartEpoch(0);
}

int64_t TensorBatchSource::batches_per_epoch() const { return all_.size() / batch_size_; }

void TensorBatchSource::StartEpoch(uint64_t epoch_seed, int64_t first_batch) {
  if (shuffle_) {
    torch::Generator generator = at::detail::createCPUGenerator(epoch_seed);
    order_ = torch::randperm(all_.size(), generator);
  } else {
    order_ = torch::arange(all_.size());
  }
  next_ = first_batch;
}

std::optional<Batch> TensorBatchSource::Next() {
  if (next_ >= batches_per_epoch()) return std::nullopt;
  const auto idx = order_.slice(0, next_ * batch_size_, (next_ + 1) * batch_size_);
  ++next_;
  return Batch{all_.images.index_select(0, idx), all_.age.index_select(0, idx), all_.gender.index_select(0, idx),
               all_.ethnicity.index_select(0, idx)};
}

}  // namespace facet::testing
