#include "core/train/checkpoint.h"

#include "core/util/file_util.h"

#include <torch/torch.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <sstream>

namespace facet {
namespace {

constexpr int64_t kCheckpointFormatVersion = 2;  // 2: checksum footer
constexpr const char* kAveragedModelKey = "averaged_model";  // optional: only runs with a weight average

// History rows are stored as a (epochs x fields) double tensor; this is the one place that lists the fields.
template <typename Visit>
void VisitEpochFields(EpochMetrics& m, Visit&& visit) {
  double stage = static_cast<double>(m.stage), epoch = m.epoch, n = static_cast<double>(m.validation.n);
  visit(stage);
  visit(epoch);
  visit(m.train_loss);
  for (auto& v : m.train_task_losses) visit(v);
  for (auto& v : m.log_variances) visit(v);
  for (auto& v : m.effective_weights) visit(v);
  visit(m.images_per_s);
  visit(m.seconds);
  visit(n);
  visit(m.validation.loss);
  for (auto& v : m.validation.task_losses) visit(v);
  visit(m.validation.age_rmse);
  visit(m.validation.age_mae_years);
  visit(m.validation.gender_accuracy);
  visit(m.validation.ethnicity_accuracy);
  for (auto& v : m.validation.gender_class_accuracy) visit(v);
  for (auto& v : m.validation.ethnicity_class_accuracy) visit(v);
  m.stage = static_cast<Stage>(static_cast<int>(stage));
  m.epoch = static_cast<int>(epoch);
  m.validation.n = static_cast<int64_t>(n);
}

int64_t EpochFieldCount() {
  EpochMetrics m;
  int64_t count = 0;
  VisitEpochFields(m, [&](double&) { ++count; });
  return count;
}

torch::Tensor HistoryToTensor(const std::vector<EpochMetrics>& history) {
  const int64_t fields = EpochFieldCount();
  auto t = torch::zeros({static_cast<int64_t>(history.size()), fields}, torch::kDouble);
  auto a = t.accessor<double, 2>();
  for (size_t i = 0; i < history.size(); ++i) {
    EpochMetrics m = history[i];
    int64_t j = 0;
    VisitEpochFields(m, [&](double& v) { a[i][j++] = v; });
  }
  return t;
}

std::vector<EpochMetrics> HistoryFromTensor(const torch::Tensor& t) {
  if (t.dim() != 2 || t.size(1) != EpochFieldCount()) throw std::runtime_error("history has the wrong shape");
  const auto d = t.to(torch::kDouble).contiguous();
  auto a = d.accessor<double, 2>();
  std::vector<EpochMetrics> history(static_cast<size_t>(d.size(0)));
  for (size_t i = 0; i < history.size(); ++i) {
    int64_t j = 0;
    VisitEpochFields(history[i], [&](double& v) { v = a[i][j++]; });
  }
  return history;
}

}  // namespace

void SaveCheckpoint(const std::string& path, MultiTaskNet& model, MultiTaskLossImpl& loss,
                    torch::optim::Optimizer& optimizer, const CheckpointState& state, MultiTaskNet* averaged) {
  torch::serialize::OutputArchive root, model_archive, loss_archive, optimizer_archive;
  model->save(model_archive);
  loss.save(loss_archive);
  optimizer.save(optimizer_archive);
  root.write("model", model_archive);
  if (averaged) {
    torch::serialize::OutputArchive averaged_archive;
    (*averaged)->save(averaged_archive);
    root.write(kAveragedModelKey, averaged_archive);
  }
  root.write("loss", loss_archive);
  root.write("optimizer", optimizer_archive);
  root.write("format_version", torch::tensor(kCheckpointFormatVersion));
  root.write("epochs_completed", torch::tensor(static_cast<int64_t>(state.epochs_completed)));
  root.write("history", HistoryToTensor(state.history));
  // Mid-epoch progress: [steps, loss_sum, task_loss_sums..., images, seconds]; all zeros at an epoch's end.
  const PartialEpoch partial = state.partial.value_or(PartialEpoch{});
  root.write("partial_epoch", torch::tensor({static_cast<double>(partial.steps), partial.loss_sum,
                                             partial.task_loss_sums[0], partial.task_loss_sums[1],
                                             partial.task_loss_sums[2], static_cast<double>(partial.images),
                                             partial.seconds},
                                            torch::kDouble));
  root.write("planned_last_epoch", torch::tensor(static_cast<int64_t>(state.planned_last_epoch)));
  root.write("rng_state", partial.rng_state.defined() ? partial.rng_state : torch::empty({0}, torch::kUInt8));
  std::ostringstream bytes;
  root.save_to(bytes);
  WriteChecksummedFile(path, bytes.str());
}

CheckpointState LoadCheckpoint(const std::string& path, MultiTaskNet& model, MultiTaskLossImpl& loss,
                               torch::optim::Optimizer& optimizer, MultiTaskNet* averaged) {
  try {
    torch::serialize::InputArchive root, model_archive, loss_archive, optimizer_archive;
    std::istringstream bytes(ReadChecksummedFile(path));  // throws on a torn or corrupt file before parsing it
    root.load_from(bytes);
    torch::Tensor version, epochs, history, partial, rng_state;
    root.read("format_version", version);
    if (version.item<int64_t>() != kCheckpointFormatVersion) {
      throw std::runtime_error("unsupported checkpoint format " + std::to_string(version.item<int64_t>()));
    }
    root.read("model", model_archive);
    root.read("loss", loss_archive);
    root.read("optimizer", optimizer_archive);
    root.read("epochs_completed", epochs);
    root.read("history", history);
    root.read("partial_epoch", partial);
    root.read("rng_state", rng_state);
    if (partial.numel() != 7) throw std::runtime_error("partial_epoch has the wrong shape");
    model->load(model_archive);
    loss.load(loss_archive);
    optimizer.load(optimizer_archive);
    bool has_averaged_model = false;
    if (averaged) {
      torch::serialize::InputArchive averaged_archive;
      has_averaged_model = root.try_read(kAveragedModelKey, averaged_archive);
      if (has_averaged_model) (*averaged)->load(averaged_archive);
    }
    CheckpointState state{static_cast<int>(epochs.item<int64_t>()), HistoryFromTensor(history), std::nullopt};
    state.has_averaged_model = has_averaged_model;
    torch::Tensor planned_last_epoch;  // absent from checkpoints written before time budgets: no plan
    if (root.try_read("planned_last_epoch", planned_last_epoch)) {
      state.planned_last_epoch = static_cast<int>(planned_last_epoch.item<int64_t>());
    }
    const auto p = partial.accessor<double, 1>();
    if (p[0] > 0) {
      state.partial = PartialEpoch{static_cast<int64_t>(p[0]), p[1], {p[2], p[3], p[4]},
                                   static_cast<int64_t>(p[5]), p[6], rng_state};
    }
    return state;
  } catch (const c10::Error& e) {
    throw std::runtime_error("cannot load checkpoint '" + path + "': " + e.what_without_backtrace());
  } catch (const std::runtime_error& e) {
    throw std::runtime_error("cannot load checkpoint '" + path + "': " + e.what());
  }
}

std::string CheckpointPath(const std::string& folder, int epoch) {
  char name[32];
  std::snprintf(name, sizeof(name), "epoch-%04d.ckpt", epoch);
  return (std::filesystem::path(folder) / name).string();
}

std::string MidEpochCheckpointPath(const std::string& folder, int epochs_completed, int64_t steps) {
  char name[48];
  std::snprintf(name, sizeof(name), "epoch-%04d.step-%06lld.ckpt", epochs_completed, static_cast<long long>(steps));
  return (std::filesystem::path(folder) / name).string();
}

std::vector<std::string> ListCheckpoints(const std::string& folder) {
  std::vector<std::string> paths;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(folder, ec)) {
    const auto name = entry.path().filename().string();
    if (name.rfind("epoch-", 0) == 0 && entry.path().extension() == ".ckpt") paths.push_back(entry.path().string());
  }
  // Zero-padded numbers: lexical order is numeric order, and "epoch-0007.step-..." sorts after "epoch-0007.ckpt".
  std::sort(paths.rbegin(), paths.rend());
  return paths;
}

}  // namespace facet
