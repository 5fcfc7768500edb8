// The two-stage training loop: frozen encoder, then unfrozen with discriminative learning rates; one-cycle AdamW
// in each stage; per-epoch validation; checkpoints; cancellation between steps.
// Thread contract: one thread runs a Trainer; the callbacks are called on it (should_stop and should_suspend may
// read flags other threads set). Run throws NonFiniteLossError when the loss diverges, std::runtime_error when a
// checkpoint cannot be written or a peer rank fails; the constructor std::invalid_argument for a bad config.
#pragma once

#include "core/data/batch_source.h"
#include "core/loss/multitask_loss.h"
#include "core/model/multitask_net.h"
#include "core/train/calibration.h"
#include "core/train/evaluation.h"
#include "core/train/training_config.h"

#include <c10/core/Device.h>

#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace torch::optim {
class AdamW;
}

namespace facet {

class DistributedGroup;
class GradientReducer;
class OneCycleSchedule;
class WeightAverage;

enum class Stage { kFrozen = 1, kUnfrozen = 2 };

struct StepProgress {
  Stage stage = Stage::kFrozen;
  int epoch = 0;             // 1-based, counted over both stages
  int total_epochs = 0;
  int64_t step = 0;          // 1-based within the epoch
  int64_t steps_in_epoch = 0;
  int64_t global_step = 0;   // 1-based over the whole run
  int64_t total_steps = 0;
  double loss = 0.0;         // this batch's combined loss
  double images_per_s = 0.0; // over the epoch so far
  double head_lr = 0.0;
};

struct EpochMetrics {
  Stage stage = Stage::kFrozen;
  int epoch = 0;
  double train_loss = 0.0;                            // mean combined loss over the epoch's batches
  std::array<double, kNumTasks> train_task_losses{};
  std::array<double, kNumTasks> log_variances{};      // at the end of the epoch
  std::array<double, kNumTasks> effective_weights{};
  double images_per_s = 0.0;                          // training step throughput, data loading included
  double seconds = 0.0;                               // training + validation wall time
  EvalMetrics validation;
};

// What "best epoch" minimises: the unweighted sum of the validation task losses, so that it means the same under
// every loss weighting (the uncertainty-weighted total moves with the learned weights).
double ValidationScore(const EpochMetrics& m);

// Where a suspended epoch stopped, and what it had accumulated: enough to finish it as if never interrupted.
struct PartialEpoch {
  int64_t steps = 0;  // batches done
  double loss_sum = 0.0;
  std::array<double, kNumTasks> task_loss_sums{};
  int64_t images = 0;
  double seconds = 0.0;  // training time spent on it so far
  at::Tensor rng_state;  // LibTorch's CPU generator after those steps (dropout draws from it)
};

struct TrainResult {
  std::vector<EpochMetrics> history;  // every epoch so far, resumed ones included
  int best_epoch = 0;                 // lowest ValidationScore (0: none yet)
  bool cancelled = false;
  bool suspended = false;             // stopped by should_suspend, after writing a mid-epoch checkpoint
  int resumed_from_epoch = 0;         // 0 when the run started fresh
};

// In a data-parallel run every callback runs on every rank; progress and metrics are the same on all of them.
struct TrainerCallbacks {
  std::function<void(const StepProgress&)> on_step;
  std::function<void(const EpochMetrics&)> on_epoch;
  // Polled between steps; returning true stops the run at once (the last epoch checkpoint stays valid).
  std::function<bool()> should_stop;
  // Polled between steps; returning true writes a checkpoint of this very step, then stops: the next Run resumes
  // there exactly (a server shutting down mid-epoch loses no work). Without a checkpoint_dir it stops only.
  std::function<bool()> should_suspend;
  // Seconds on a steady clock: what epoch times and a time budget are measured with. Default: std::chrono's
  // steady_clock; tests drive it to make a budgeted run's plan deterministic.
  std::function<double()> clock;
};

// Raised when a batch's loss is NaN or infinite, before the optimizer can spread it into the weights.
class NonFiniteLossError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

class Trainer {
 public:
  // Validates the config (std::invalid_argument naming the field), builds the model on the chosen device and
  // loads the pretrained encoder if one is configured. The sources must outlive the trainer.
  // Data-parallel: `group` joins config.world_size processes, each with its shard of the data (OpenTrainingData
  // with a DataShard). Rank 0's initial weights go to all; gradients are averaged every step, so weights stay
  // identical; BatchNorm statistics are averaged at the end of each epoch; validation metrics and the calibration
  // are computed over all ranks' outputs; only rank 0 writes checkpoints. Stopping and suspending are agreed on
  // every step (any rank's request stops all at the same step). A peer that dies makes the next collective throw.
  Trainer(TrainingConfig config, BatchSource& train, BatchSource& validation, DistributedGroup* group = nullptr);
  ~Trainer();

  // Trains to the end, or until should_stop; resumes from the newest readable checkpoint in
  // config.checkpoint_dir when there is one.
  TrainResult Run(const TrainerCallbacks& callbacks = {});

  // The weights the optimizer trains.
  MultiTaskNet& model() { return model_; }
  // The weights that validate, calibrate and export: the moving average when config.ema_decay > 0, else model().
  MultiTaskNet& served_model();
  const MultiTaskLossImpl& loss() const { return *loss_; }
  c10::Device device() const { return device_; }
  const TrainingConfig& config() const { return config_; }

  // Fits temperatures and a conformal age interval on the validation source (served_model() as it is now: the last
  // epoch's validation outputs when the weights have not changed since, else a new pass); the next ExportModel
  // stores them with the model.
  CalibrationReport Calibrate(double age_coverage = 0.9);

  // Writes served_model() for serving and for Python (ExportModel in core/model/model_file.h), with the last
  // Calibrate's result when there was one.
  void ExportModel(const std::string& path);

 private:
  void ConfigureStage(Stage stage);
  bool budgeted() const { return config_.time_budget_seconds > 0; }
  int LastEpoch() const;                // configured, or a budget's plan (0: a budget not planned yet)
  int StageEpochs(Stage stage) const;   // 0: a budgeted stage not planned yet
  double BudgetSpent() const;           // seconds of the budget gone, earlier runs of this job included
  // Plans a budgeted run's last epoch from where `epoch` starts; every rank plans from the ranks' mean figures.
  void Replan(int epoch, double elapsed_before_s, double epoch_s);
  // One epoch, step by step (its order is the contract with the Python reference and with resume).
  void RunEpoch(Stage stage, int epoch, int epoch_in_stage, const TrainerCallbacks& callbacks, TrainResult& result);
  // An epoch's running figures: from zero, or from a mid-epoch checkpoint.
  struct EpochTally {
    int64_t steps = 0;
    int64_t images = 0;
    double loss_sum = 0.0;
    at::Tensor task_loss_sums;    // (3) double
    double seconds_before = 0.0;  // trained in earlier runs of this epoch (a resumed one)
    double start = 0.0;           // clock_ when this run of the epoch began
  };
  struct StepLosses {
    double loss = 0.0;
    at::Tensor per_task;  // (3) float
  };
  enum class Interruption { kNone, kStop, kSuspend };
  EpochTally BeginEpoch(int epoch);  // seeds the epoch's randomness, positions the data, train mode
  double TrainedSeconds(const EpochTally& tally) const;
  Interruption AgreeOnInterruption(const TrainerCallbacks& callbacks);  // every rank the same answer
  double ApplySchedule(const OneCycleSchedule& schedule, int64_t stage_step);  // the step's LR factor
  StepLosses TrainStep(const Batch& batch);  // forward, loss and (when finite) backward and the optimizer step
  [[noreturn]] void ThrowNonFiniteLoss(const StepLosses& losses, Stage stage, int epoch, int64_t step) const;
  void ReportStep(Stage stage, int epoch, const EpochTally& tally, double loss, double lr_factor,
                  const TrainerCallbacks& callbacks) const;
  void ReduceEpochOverRanks(EpochTally& tally);  // sums over every rank; BatchNorm statistics averaged
  void FinishEpoch(Stage stage, int epoch, const EpochTally& tally, const TrainerCallbacks& callbacks,
                   TrainResult& result);  // metrics, validation, checkpoint, on_epoch
  bool StopRequested(const TrainerCallbacks& callbacks) const;
  void Suspend(int epoch, const PartialEpoch& partial, const TrainResult& result);
  bool is_primary() const;
  MultiTaskNet* averaged_model();  // nullptr without a weight average
  std::vector<at::Tensor> ModelState();  // parameters and buffers of the model, its average and the loss
  void AverageBatchNormStatistics(MultiTaskNet& model);
  LabelledOutputs CollectValidationOutputs();  // the whole validation set, gathered from every rank
  int64_t WeightsVersion();  // changes with every in-place change of a served_model() parameter or buffer
  void RefreshValidationOutputs();  // a validation pass, remembered with the weights' version
  int ResumeFromCheckpoint(TrainResult& result);  // epochs completed

  TrainingConfig config_;
  BatchSource& train_;
  BatchSource& validation_;
  c10::Device device_;
  MultiTaskNet model_{nullptr};
  std::shared_ptr<MultiTaskLossImpl> loss_;
  std::unique_ptr<WeightAverage> average_;  // when config.ema_decay > 0
  std::unique_ptr<torch::optim::AdamW> optimizer_;
  std::vector<double> group_max_lrs_;  // per optimizer param group, for the current stage
  int planned_last_epoch_ = 0;           // see StageEpochs
  double budget_spent_before_run_s_ = 0; // by the resumed history (and part-epoch)
  std::function<double()> clock_;        // callbacks.clock or the steady clock, for this Run
  double run_start_s_ = 0;               // clock_, at Run
  bool stopped_ = false;
  bool suspended_ = false;
  std::optional<PartialEpoch> resume_partial_;  // from a mid-epoch checkpoint, for the next epoch that runs
  Calibration calibration_;
  // The last epoch's validation outputs and the weights' version they came from: Calibrate reuses them instead
  // of another pass over the validation set when the weights have not changed since.
  std::optional<LabelledOutputs> validation_outputs_;
  int64_t validation_outputs_version_ = -1;
  DistributedGroup* group_ = nullptr;
  std::unique_ptr<GradientReducer> reducer_;  // for the current stage's trainable parameters
};

}  // namespace facet
