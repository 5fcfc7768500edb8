#include "core/train/trainer.h"

#include "core/distributed/distributed_group.h"
#include "core/distributed/gradient_reducer.h"
#include "core/model/model_file.h"
#include "core/model/state_dict.h"
#include "core/train/checkpoint.h"
#include "core/train/epoch_budget.h"
#include "core/train/fused_adamw.h"
#include "core/train/mixup.h"
#include "core/train/one_cycle.h"
#include "core/train/weight_average.h"
#include "core/util/device.h"
#include "core/util/seed.h"

#include <torch/torch.h>

#include <chrono>
#include <cmath>
#include <filesystem>

namespace facet {
namespace {

constexpr double kBeta2 = 0.99;   // fastai's Adam betas are (0.9, 0.99); beta1 follows the one-cycle momentum
constexpr int kCheckpointsKept = 2;
constexpr int kLossParamGroup = 3; // param groups: stem..layer2, layer3..layer4, heads, loss parameters

double SteadyClockSeconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

std::array<double, kNumTasks> ToArray(const torch::Tensor& t) {
  const auto cpu = t.detach().to(torch::kCPU, torch::kDouble);
  return {cpu[0].item<double>(), cpu[1].item<double>(), cpu[2].item<double>()};
}

// LabelledOutputs as one float64 matrix of rows (age, 2 gender logits, 5 ethnicity logits, 3 labels) for gathering.
constexpr int64_t kOutputColumns = 1 + kNumGenders + kNumEthnicities + 3;

torch::Tensor PackRows(const LabelledOutputs& d) {
  const auto col = [](const torch::Tensor& t) { return t.to(torch::kDouble).reshape({t.size(0), -1}); };
  return torch::cat({col(d.outputs.age), col(d.outputs.gender), col(d.outputs.ethnicity), col(d.age), col(d.gender),
                     col(d.ethnicity)},
                    1);
}

LabelledOutputs UnpackRows(const torch::Tensor& rows) {
  if (rows.dim() != 2 || rows.size(1) != kOutputColumns) throw std::logic_error("gathered outputs of the wrong shape");
  LabelledOutputs d;
  int64_t c = 0;
  const auto take = [&](int64_t n) {
    auto t = rows.narrow(1, c, n);
    c += n;
    return t;
  };
  d.outputs.age = take(1).squeeze(1).to(torch::kFloat);
  d.outputs.gender = take(kNumGenders).to(torch::kFloat).contiguous();
  d.outputs.ethnicity = take(kNumEthnicities).to(torch::kFloat).contiguous();
  d.age = take(1).squeeze(1).to(torch::kFloat);
  d.gender = take(1).squeeze(1).to(torch::kLong);
  d.ethnicity = take(1).squeeze(1).to(torch::kLong);
  return d;
}

// A model's parameters (detached), then its buffers: what a broadcast writes into and WeightsVersion watches.
void AppendWeights(const MultiTaskNet& model, std::vector<at::Tensor>& out) {
  for (const auto& t : model->parameters()) out.push_back(t.detach());
  for (const auto& t : model->buffers()) out.push_back(t);
}

void PruneCheckpoints(const std::string& folder) {
  const auto paths = ListCheckpoints(folder);
  for (size_t i = kCheckpointsKept; i < paths.size(); ++i) std::filesystem::remove(paths[i]);
}

}  // namespace

double ValidationScore(const EpochMetrics& m) {
  return m.validation.task_losses[0] + m.validation.task_losses[1] + m.validation.task_losses[2];
}

Trainer::Trainer(TrainingConfig config, BatchSource& train, BatchSource& validation, DistributedGroup* group)
    : config_(std::move(config)), train_(train), validation_(validation), device_(c10::kCPU), group_(group) {
  ValidateTrainingConfig(config_);
  const int processes = group_ ? group_->world_size() : 1;
  if (processes != config_.world_size) {
    throw std::invalid_argument("world_size: the config asks for " + std::to_string(config_.world_size) +
                                " processes but " + std::to_string(processes) + " joined");
  }
  try {
    device_ = ResolveDevice(config_.device);
  } catch (const std::invalid_argument& e) {
    throw std::invalid_argument(std::string("device: ") + e.what());
  }
  ConfigureThreads(config_.threads);
  ConfigureAllocator();
  if (train_.batches_per_epoch() < 1) {
    throw std::invalid_argument("batch_size: " + std::to_string(train_.num_samples()) +
                                " training images make no full batch of " + std::to_string(config_.batch_size));
  }
  if (validation_.num_samples() < 1) throw std::invalid_argument("val_fraction: the validation set is empty");

  torch::manual_seed(config_.seed);
  model_ = MultiTaskNet(ResNetOptions{ParseArch(config_.arch), config_.base_width});
  if (!config_.pretrained_encoder.empty()) {
    try {
      LoadStateDict(*model_->encoder(), ReadTensorFile(config_.pretrained_encoder), LoadOptions{"", {"fc."}});
    } catch (const std::exception& e) {
      throw std::invalid_argument("pretrained_encoder: '" + config_.pretrained_encoder + "': " + e.what());
    }
  }
  loss_ = MakeMultiTaskLoss(config_.loss);
  model_->to(device_);
  loss_->to(device_);
  if (config_.channels_last) {
    torch::NoGradGuard no_grad;
    for (auto& p : model_->parameters()) {
      if (p.dim() == 4) p.set_data(p.contiguous(torch::MemoryFormat::ChannelsLast));
    }
  }

  std::vector<torch::optim::OptimizerParamGroup> groups;
  for (auto& params : model_->LayerGroups()) {
    groups.emplace_back(params, std::make_unique<torch::optim::AdamWOptions>(
                                    torch::optim::AdamWOptions().weight_decay(config_.weight_decay)));
  }
  // The log-variances are not weights: no decay (as in the reference). A fixed weighting has none to learn, but
  // the group stays so that group indices mean the same in every checkpoint.
  groups.emplace_back(loss_->parameters(),
                      std::make_unique<torch::optim::AdamWOptions>(torch::optim::AdamWOptions().weight_decay(0.0)));
  optimizer_ = std::make_unique<FusedAdamW>(std::move(groups));
  if (config_.ema_decay > 0) average_ = std::make_unique<WeightAverage>(model_, config_.ema_decay);
  if (group_) {
    auto state = ModelState();
    group_->Broadcast(state);  // every rank starts from rank 0's weights
  }
}

Trainer::~Trainer() = default;

bool Trainer::is_primary() const { return group_ == nullptr || group_->is_primary(); }

MultiTaskNet& Trainer::served_model() { return average_ ? average_->model() : model_; }

MultiTaskNet* Trainer::averaged_model() { return average_ ? &average_->model() : nullptr; }

std::vector<at::Tensor> Trainer::ModelState() {
  std::vector<at::Tensor> state;
  AppendWeights(model_, state);
  if (average_) AppendWeights(average_->model(), state);
  for (const auto& t : loss_->parameters()) state.push_back(t.detach());
  return state;
}

void Trainer::AverageBatchNormStatistics(MultiTaskNet& model) {
  torch::NoGradGuard no_grad;
  for (auto& buffer : model->buffers()) {
    if (!buffer.is_floating_point()) continue;  // num_batches_tracked is the same on every rank
    buffer.div_(group_->world_size());
    group_->AllReduceSum(buffer);
  }
}

LabelledOutputs Trainer::CollectValidationOutputs() {
  LabelledOutputs local = CollectOutputs(served_model(), validation_, device_);
  if (!group_) return local;
  return UnpackRows(group_->AllGatherRows(PackRows(local)).cpu());
}

void Trainer::RefreshValidationOutputs() {
  validation_outputs_ = CollectValidationOutputs();
  validation_outputs_version_ = WeightsVersion();
}

int64_t Trainer::WeightsVersion() {
  std::vector<at::Tensor> weights;
  AppendWeights(served_model(), weights);  // a detached tensor shares its source's version counter
  int64_t version = 0;
  for (const auto& t : weights) version += static_cast<int64_t>(t._version());
  return version;
}

int Trainer::ResumeFromCheckpoint(TrainResult& result) {
  int epochs_completed = 0;
  int64_t partial_steps = 0;
  if (!config_.checkpoint_dir.empty()) {
    for (const auto& path : ListCheckpoints(config_.checkpoint_dir)) {
      try {
        CheckpointState state = LoadCheckpoint(path, model_, *loss_, *optimizer_, averaged_model());
        epochs_completed = state.epochs_completed;
        if (average_ && !state.has_averaged_model) average_->Restart();
        result.history = std::move(state.history);
        result.resumed_from_epoch = epochs_completed;
        planned_last_epoch_ = state.planned_last_epoch;
        if (state.partial) partial_steps = state.partial->steps;
        resume_partial_ = std::move(state.partial);
        break;
      } catch (const std::runtime_error&) {
        continue;  // torn or corrupt: fall back to the previous checkpoint
      }
    }
  }
  if (group_) {
    // Every rank must resume at the same point; the optimizer state is not broadcast, so each reads it itself.
    const auto where = group_->AllGatherRows(torch::tensor({{static_cast<int64_t>(epochs_completed), partial_steps}},
                                                           torch::kLong)).cpu();
    for (int r = 0; r < group_->world_size(); ++r) {
      if (where[r][0].item<int64_t>() != where[0][0].item<int64_t>() ||
          where[r][1].item<int64_t>() != where[0][1].item<int64_t>()) {
        throw std::runtime_error(
            "rank " + std::to_string(r) + " found a checkpoint at epoch " + std::to_string(where[r][0].item<int64_t>()) +
            " step " + std::to_string(where[r][1].item<int64_t>()) + " but rank 0 at epoch " +
            std::to_string(where[0][0].item<int64_t>()) + " step " + std::to_string(where[0][1].item<int64_t>()) +
            " in '" + config_.checkpoint_dir + "': every rank must read the same checkpoint folder (shared storage "
            "across hosts)");
      }
    }
    auto state = ModelState();
    group_->Broadcast(state);
  }
  return epochs_completed;
}

void Trainer::ConfigureStage(Stage stage) {
  const bool frozen = stage == Stage::kFrozen;
  model_->SetEncoderFrozen(frozen);
  const StageConfig& sc = frozen ? config_.frozen : config_.unfrozen;
  if (frozen) {
    group_max_lrs_.assign(4, sc.lr_max);
  } else {
    // Geometric spread over the three layer groups, as fastai's lr slice(lr_min, lr_max).
    const double mid = std::sqrt(sc.lr_min * sc.lr_max);
    group_max_lrs_ = {sc.lr_min, mid, sc.lr_max, sc.lr_max};
  }
  group_max_lrs_[kLossParamGroup] *= config_.log_variance_lr_scale;
  if (group_) {
    std::vector<at::Tensor> trainable;
    for (const auto& p : model_->parameters()) {
      if (p.requires_grad()) trainable.push_back(p);
    }
    for (const auto& p : loss_->parameters()) {
      if (p.requires_grad()) trainable.push_back(p);
    }
    reducer_.reset();  // its hooks go before the new reducer's are added
    reducer_ = std::make_unique<GradientReducer>(*group_, std::move(trainable));
  }
}

int Trainer::LastEpoch() const {
  if (!budgeted()) return config_.frozen.epochs + config_.unfrozen.epochs;
  return planned_last_epoch_;
}

int Trainer::StageEpochs(Stage stage) const {
  if (stage == Stage::kFrozen) return config_.frozen.epochs;
  if (!budgeted()) return config_.unfrozen.epochs;
  return planned_last_epoch_ == 0 ? 0 : planned_last_epoch_ - config_.frozen.epochs;
}

double Trainer::BudgetSpent() const { return budget_spent_before_run_s_ + (clock_() - run_start_s_); }

void Trainer::Replan(int epoch, double elapsed_before_s, double epoch_s) {
  if (group_) {  // ranks measure slightly different times, and must all plan the same epochs
    auto figures = torch::tensor({elapsed_before_s, epoch_s}, torch::kDouble);
    group_->AllReduceSum(figures);
    figures = figures.cpu() / group_->world_size();
    elapsed_before_s = figures[0].item<double>();
    epoch_s = figures[1].item<double>();
  }
  planned_last_epoch_ = PlanLastEpoch(config_.time_budget_seconds, elapsed_before_s, epoch_s, epoch);
}

bool Trainer::StopRequested(const TrainerCallbacks& callbacks) const {
  return callbacks.should_stop && callbacks.should_stop();
}

TrainResult Trainer::Run(const TrainerCallbacks& callbacks) {
  TrainResult result;
  planned_last_epoch_ = 0;
  const int epochs_completed = ResumeFromCheckpoint(result);
  budget_spent_before_run_s_ = resume_partial_ ? resume_partial_->seconds : 0.0;
  for (const auto& m : result.history) budget_spent_before_run_s_ += m.seconds;
  clock_ = callbacks.clock ? callbacks.clock : SteadyClockSeconds;
  run_start_s_ = clock_();

  stopped_ = suspended_ = false;
  for (int epoch = epochs_completed + 1; !stopped_; ++epoch) {
    if (LastEpoch() != 0 && epoch > LastEpoch()) break;
    // A budgeted stage's first epoch plans from its own pace (in RunEpoch); each later one from the epoch before,
    // unless it resumes part-way, with the plan it was written with.
    if (budgeted() && epoch > config_.frozen.epochs + 1 && !resume_partial_ && !result.history.empty()) {
      Replan(epoch, BudgetSpent(), result.history.back().seconds);
    }
    const Stage stage = epoch <= config_.frozen.epochs ? Stage::kFrozen : Stage::kUnfrozen;
    const int epoch_in_stage = stage == Stage::kFrozen ? epoch - 1 : epoch - 1 - config_.frozen.epochs;
    RunEpoch(stage, epoch, epoch_in_stage, callbacks, result);
  }
  result.cancelled = stopped_ && !suspended_;
  result.suspended = suspended_;
  for (const auto& m : result.history) {
    if (result.best_epoch == 0 ||
        ValidationScore(m) < ValidationScore(result.history[result.best_epoch - 1])) {
      result.best_epoch = m.epoch;
    }
  }
  return result;
}

// The per-step order is the contract with the Python reference and with resume: agree on stopping, (re)plan a
// budget, set the step's learning rates, train the step, update the weight average, report. Each is its own
// function below.
void Trainer::RunEpoch(Stage stage, int epoch, int epoch_in_stage, const TrainerCallbacks& callbacks,
                       TrainResult& result) {
  ConfigureStage(stage);
  const int64_t steps_per_epoch = train_.batches_per_epoch();
  const auto stage_schedule = [&] {
    return OneCycleSchedule(OneCycleOptions{std::max(1, StageEpochs(stage)) * steps_per_epoch});
  };
  OneCycleSchedule schedule = stage_schedule();
  // Until a budgeted stage is planned its length is unknown: the learning rate stays at the schedule's start, which
  // is the same for every length.
  bool unplanned = StageEpochs(stage) == 0;

  EpochTally tally = BeginEpoch(epoch);
  while (auto batch = train_.Next()) {
    switch (AgreeOnInterruption(callbacks)) {
      case Interruption::kNone: break;
      case Interruption::kStop: stopped_ = true; return;
      case Interruption::kSuspend:
        Suspend(epoch, PartialEpoch{tally.steps, tally.loss_sum, ToArray(tally.task_loss_sums), tally.images,
                                    TrainedSeconds(tally), at::detail::getDefaultCPUGenerator().get_state()},
                result);
        return;
    }
    if (unplanned && tally.steps >= FirstPlanStep(steps_per_epoch)) {
      const double epoch_seconds = TrainedSeconds(tally);
      Replan(epoch, BudgetSpent() - epoch_seconds,
             epoch_seconds / static_cast<double>(tally.steps) * steps_per_epoch);
      schedule = stage_schedule();
      unplanned = false;
    }
    const double lr_factor = ApplySchedule(schedule, unplanned ? 0 : epoch_in_stage * steps_per_epoch + tally.steps);
    const StepLosses losses = TrainStep(*batch);
    ++tally.steps;
    if (!std::isfinite(losses.loss)) ThrowNonFiniteLoss(losses, stage, epoch, tally.steps);
    // Counted over the whole run from the step's position, so a resumed run averages exactly as one that never
    // stopped.
    if (average_) average_->Update(static_cast<int64_t>(epoch - 1) * steps_per_epoch + tally.steps - 1);
    tally.loss_sum += losses.loss;
    tally.task_loss_sums += losses.per_task.detach().to(torch::kCPU, torch::kDouble);
    tally.images += batch->size();
    if (callbacks.on_step) ReportStep(stage, epoch, tally, losses.loss, lr_factor, callbacks);
  }
  ReduceEpochOverRanks(tally);
  FinishEpoch(stage, epoch, tally, callbacks, result);
}

Trainer::EpochTally Trainer::BeginEpoch(int epoch) {
  // Everything random in an epoch (dropout, data order, augmentation) derives from (seed, epoch), so resuming
  // after epoch k replays epoch k+1 exactly. A mid-epoch checkpoint restores the generator and the data position.
  const uint64_t data_seed = MixSeed(config_.seed ^ 0x5EED, static_cast<uint64_t>(epoch));
  PartialEpoch partial;
  if (resume_partial_) {
    partial = std::move(*resume_partial_);
    resume_partial_.reset();
    at::Generator generator = at::detail::getDefaultCPUGenerator();  // a handle to the process-wide generator
    generator.set_state(partial.rng_state);
  } else {
    // Each rank its own dropout draws (rank 0's are those of a one-process run).
    const uint64_t rank = group_ ? static_cast<uint64_t>(group_->rank()) : 0;
    torch::manual_seed(MixSeed(config_.seed, static_cast<uint64_t>(epoch)) + rank);
  }
  train_.StartEpoch(data_seed, partial.steps);
  model_->train();
  EpochTally tally;
  tally.steps = partial.steps;
  tally.images = partial.images;
  tally.loss_sum = partial.loss_sum;
  tally.task_loss_sums = torch::tensor(
      {partial.task_loss_sums[0], partial.task_loss_sums[1], partial.task_loss_sums[2]}, torch::kDouble);
  tally.seconds_before = partial.seconds;
  tally.start = clock_();
  return tally;
}

double Trainer::TrainedSeconds(const EpochTally& tally) const { return tally.seconds_before + (clock_() - tally.start); }

Trainer::Interruption Trainer::AgreeOnInterruption(const TrainerCallbacks& callbacks) {
  bool stop = StopRequested(callbacks);
  bool suspend = !stop && callbacks.should_suspend && callbacks.should_suspend();
  if (group_) {  // all ranks stop at the same step, or the others would wait in a collective
    const auto any = group_->AnyRank({stop, suspend});
    stop = any[0];
    suspend = !stop && any[1];
  }
  return stop ? Interruption::kStop : suspend ? Interruption::kSuspend : Interruption::kNone;
}

double Trainer::ApplySchedule(const OneCycleSchedule& schedule, int64_t stage_step) {
  const double lr_factor = schedule.LrFactor(stage_step);
  const double beta1 = schedule.Momentum(stage_step);
  auto& groups = optimizer_->param_groups();
  for (size_t g = 0; g < groups.size(); ++g) {
    auto& options = static_cast<torch::optim::AdamWOptions&>(groups[g].options());
    options.lr(group_max_lrs_[g] * lr_factor);
    options.betas({beta1, kBeta2});
  }
  return lr_factor;
}

Trainer::StepLosses Trainer::TrainStep(const Batch& batch) {
  auto images = batch.images.to(device_, /*non_blocking=*/true);
  if (config_.channels_last) images = images.contiguous(torch::MemoryFormat::ChannelsLast);
  std::optional<MixupDraw> mixup;
  if (config_.mixup_alpha > 0) {
    mixup = DrawMixup(images.size(0), config_.mixup_alpha);
    images = MixImages(images, *mixup);
  }
  torch::Tensor task_losses, loss;
  {
    BFloat16Autocast autocast(device_, config_.precision == "bf16");
    const auto outputs = model_->forward(images);
    const auto age = batch.age.to(device_, true), gender = batch.gender.to(device_, true),
               ethnicity = batch.ethnicity.to(device_, true);
    task_losses = (mixup ? MixedTaskLosses(*loss_, outputs, age, gender, ethnicity, *mixup)
                         : loss_->TaskLosses(outputs, age, gender, ethnicity))
                      .to(torch::kFloat);
    loss = loss_->Combine(task_losses);
  }
  const double loss_value = loss.item<double>();
  if (!std::isfinite(loss_value)) return {loss_value, task_losses};  // the caller throws, naming the step
  // Drop the gradients rather than zeroing them: backward then writes fresh ones instead of adding to zeros.
  for (auto& group : optimizer_->param_groups()) {
    for (auto& p : group.params()) p.mutable_grad() = at::Tensor();
  }
  if (reducer_) reducer_->PrepareForBackward();
  loss.backward();
  if (reducer_) reducer_->FinishBackward();
  optimizer_->step();
  return {loss_value, task_losses};
}

void Trainer::ThrowNonFiniteLoss(const StepLosses& losses, Stage stage, int epoch, int64_t step) const {
  const auto per_task = ToArray(losses.per_task);
  throw NonFiniteLossError("non-finite loss " + std::to_string(losses.loss) + " at stage " +
                           std::to_string(static_cast<int>(stage)) + ", epoch " + std::to_string(epoch) + ", step " +
                           std::to_string(step) + " (task losses age " + std::to_string(per_task[0]) + ", gender " +
                           std::to_string(per_task[1]) + ", ethnicity " + std::to_string(per_task[2]) +
                           "); lower the learning rate");
}

void Trainer::ReportStep(Stage stage, int epoch, const EpochTally& tally, double loss, double lr_factor,
                         const TrainerCallbacks& callbacks) const {
  const int64_t steps_per_epoch = train_.batches_per_epoch();
  StepProgress p;
  p.stage = stage;
  p.epoch = epoch;
  p.total_epochs = LastEpoch() == 0 ? epoch : LastEpoch();  // a budget's plan so far
  p.step = tally.steps;
  p.steps_in_epoch = steps_per_epoch;
  p.global_step = static_cast<int64_t>(epoch - 1) * steps_per_epoch + tally.steps;
  p.total_steps = static_cast<int64_t>(p.total_epochs) * steps_per_epoch;
  p.loss = loss;
  p.images_per_s = tally.images / std::max(TrainedSeconds(tally), 1e-9);
  p.head_lr = group_max_lrs_[2] * lr_factor;
  callbacks.on_step(p);
}

void Trainer::ReduceEpochOverRanks(EpochTally& tally) {
  if (!group_) return;
  // The epoch's losses over every rank's batches, its images over all ranks.
  auto sums = torch::cat(
      {torch::tensor({tally.loss_sum, static_cast<double>(tally.images)}, torch::kDouble), tally.task_loss_sums});
  group_->AllReduceSum(sums);
  tally.loss_sum = sums[0].item<double>() / group_->world_size();
  tally.images = static_cast<int64_t>(sums[1].item<double>());
  tally.task_loss_sums = sums.narrow(0, 2, kNumTasks) / group_->world_size();
  AverageBatchNormStatistics(model_);
  if (average_) AverageBatchNormStatistics(average_->model());
}

void Trainer::FinishEpoch(Stage stage, int epoch, const EpochTally& tally, const TrainerCallbacks& callbacks,
                          TrainResult& result) {
  const double train_seconds = TrainedSeconds(tally);
  EpochMetrics m;
  m.stage = stage;
  m.epoch = epoch;
  m.train_loss = tally.steps ? tally.loss_sum / tally.steps : 0.0;
  m.train_task_losses = ToArray(tally.steps ? tally.task_loss_sums / tally.steps : tally.task_loss_sums);
  m.log_variances = ToArray(loss_->LogVariances());
  m.effective_weights = ToArray(loss_->EffectiveWeights());
  m.images_per_s = tally.images / std::max(train_seconds, 1e-9);
  RefreshValidationOutputs();
  m.validation = ComputeMetrics(*validation_outputs_, *loss_);
  m.seconds = TrainedSeconds(tally);
  result.history.push_back(m);

  if (!config_.checkpoint_dir.empty() && is_primary()) {
    SaveCheckpoint(CheckpointPath(config_.checkpoint_dir, epoch), model_, *loss_, *optimizer_,
                   CheckpointState{epoch, result.history, std::nullopt, planned_last_epoch_}, averaged_model());
    PruneCheckpoints(config_.checkpoint_dir);
  }
  if (callbacks.on_epoch) callbacks.on_epoch(m);
}

void Trainer::Suspend(int epoch, const PartialEpoch& partial, const TrainResult& result) {
  stopped_ = suspended_ = true;
  // Nothing new since the epoch checkpoint, or not this rank's to write.
  if (config_.checkpoint_dir.empty() || partial.steps == 0 || !is_primary()) return;
  SaveCheckpoint(MidEpochCheckpointPath(config_.checkpoint_dir, epoch - 1, partial.steps), model_, *loss_,
                 *optimizer_, CheckpointState{epoch - 1, result.history, partial, planned_last_epoch_},
                 averaged_model());
  PruneCheckpoints(config_.checkpoint_dir);
}

CalibrationReport Trainer::Calibrate(double age_coverage) {
  bool stale = !validation_outputs_ || validation_outputs_version_ != WeightsVersion();
  if (group_) stale = group_->AnyRank({stale})[0];  // collecting is a collective: all ranks or none
  if (stale) RefreshValidationOutputs();
  CalibrationReport report = FitCalibration(*validation_outputs_, age_coverage);
  calibration_ = report.calibration;
  return report;
}

void Trainer::ExportModel(const std::string& path) {
  facet::ExportModel(path, served_model(), loss_->LogVariances(), config_.image_size, calibration_);
}

}  // namespace facet
