#include "server/proto_convert.h"

namespace facet::server {
namespace {

void ApplyStage(const v1::StageConfig& in, StageConfig& out) {
  if (in.has_epochs()) out.epochs = in.epochs();
  if (in.has_lr_max()) out.lr_max = in.lr_max();
  if (in.has_lr_min()) out.lr_min = in.lr_min();
}

v1::StageConfig StageToProto(const StageConfig& s) {
  v1::StageConfig out;
  out.set_epochs(s.epochs);
  out.set_lr_max(s.lr_max);
  out.set_lr_min(s.lr_min);
  return out;
}

LossWeighting FromProto(v1::LossWeighting w) {
  switch (w) {
    case v1::LOSS_WEIGHTING_UNCERTAINTY_SEED: return LossWeighting::kUncertaintySeed;
    case v1::LOSS_WEIGHTING_EQUAL: return LossWeighting::kEqual;
    case v1::LOSS_WEIGHTING_FIXED: return LossWeighting::kFixed;
    default: return LossWeighting::kUncertainty;
  }
}

v1::LossWeighting ToProto(LossWeighting w) {
  switch (w) {
    case LossWeighting::kUncertainty: return v1::LOSS_WEIGHTING_UNCERTAINTY;
    case LossWeighting::kUncertaintySeed: return v1::LOSS_WEIGHTING_UNCERTAINTY_SEED;
    case LossWeighting::kEqual: return v1::LOSS_WEIGHTING_EQUAL;
    case LossWeighting::kFixed: return v1::LOSS_WEIGHTING_FIXED;
  }
  return v1::LOSS_WEIGHTING_UNSPECIFIED;
}

template <typename Array>
void CopyArray(const Array& a, google::protobuf::RepeatedField<double>* out) {
  for (double v : a) out->Add(v);
}

}  // namespace

TrainingConfig ToCoreConfig(const v1::TrainingConfig& in) {
  TrainingConfig c;
  c.data_dir = in.data_dir();
  c.val_dir = in.val_dir();
  if (in.has_val_fraction()) c.val_fraction = in.val_fraction();
  if (in.has_max_images()) c.max_images = in.max_images();
  if (in.has_arch()) c.arch = in.arch();
  if (in.has_base_width()) c.base_width = in.base_width();
  if (in.has_image_size()) c.image_size = in.image_size();
  if (in.has_batch_size()) c.batch_size = in.batch_size();
  ApplyStage(in.frozen(), c.frozen);
  ApplyStage(in.unfrozen(), c.unfrozen);
  if (in.has_weight_decay()) c.weight_decay = in.weight_decay();
  if (in.has_log_variance_lr_scale()) c.log_variance_lr_scale = in.log_variance_lr_scale();
  if (in.has_label_smoothing()) c.loss.label_smoothing = in.label_smoothing();
  if (in.has_ethnicity_balance()) c.ethnicity_balance = in.ethnicity_balance();
  if (in.has_ema_decay()) c.ema_decay = in.ema_decay();
  if (in.has_mixup_alpha()) c.mixup_alpha = in.mixup_alpha();
  if (in.has_time_budget_seconds()) c.time_budget_seconds = in.time_budget_seconds();
  c.loss.weighting = FromProto(in.loss_weighting());
  if (in.fixed_weights_size() > 0) {
    if (in.fixed_weights_size() != kNumTasks) {
      throw std::invalid_argument("fixed_weights: needs 3 values (age, gender, ethnicity), got " +
                                  std::to_string(in.fixed_weights_size()));
    }
    for (int i = 0; i < kNumTasks; ++i) c.loss.fixed_weights[i] = in.fixed_weights(i);
  }
  if (in.has_age_loss()) {
    try {
      c.loss.age_loss = ParseAgeLoss(in.age_loss());
    } catch (const std::invalid_argument& e) {
      throw std::invalid_argument(std::string("age_loss: ") + e.what());
    }
  }
  const auto& a = in.augment();
  if (a.has_enabled()) c.augment.enabled = a.enabled();
  if (a.has_flip_probability()) c.augment.flip_probability = a.flip_probability();
  if (a.has_rotate_probability()) c.augment.rotate_probability = a.rotate_probability();
  if (a.has_max_rotate_degrees()) c.augment.max_rotate_degrees = a.max_rotate_degrees();
  if (a.has_zoom_probability()) c.augment.zoom_probability = a.zoom_probability();
  if (a.has_max_zoom()) c.augment.max_zoom = a.max_zoom();
  if (a.has_warp_probability()) c.augment.warp_probability = a.warp_probability();
  if (a.has_max_warp()) c.augment.max_warp = a.max_warp();
  if (a.has_lighting_probability()) c.augment.lighting_probability = a.lighting_probability();
  if (a.has_max_lighting()) c.augment.max_lighting = a.max_lighting();
  if (a.has_erase_probability()) c.augment.erase_probability = a.erase_probability();
  if (a.has_max_erase_area()) c.augment.max_erase_area = a.max_erase_area();
  if (in.has_seed()) c.seed = in.seed();
  c.pretrained_encoder = in.pretrained_encoder();
  if (in.has_loader_workers()) c.loader_workers = in.loader_workers();
  if (in.has_precision()) c.precision = in.precision();
  if (in.has_world_size()) c.world_size = in.world_size();
  return c;
}

v1::TrainingConfig ToProtoConfig(const TrainingConfig& c) {
  v1::TrainingConfig out;
  out.set_data_dir(c.data_dir);
  out.set_val_dir(c.val_dir);
  out.set_val_fraction(c.val_fraction);
  out.set_max_images(c.max_images);
  out.set_arch(c.arch);
  out.set_base_width(c.base_width);
  out.set_image_size(c.image_size);
  out.set_batch_size(c.batch_size);
  *out.mutable_frozen() = StageToProto(c.frozen);
  *out.mutable_unfrozen() = StageToProto(c.unfrozen);
  out.set_weight_decay(c.weight_decay);
  out.set_loss_weighting(ToProto(c.loss.weighting));
  if (c.loss.weighting == LossWeighting::kFixed) CopyArray(c.loss.fixed_weights, out.mutable_fixed_weights());
  out.set_age_loss(AgeLossName(c.loss.age_loss));
  out.set_log_variance_lr_scale(c.log_variance_lr_scale);
  out.set_label_smoothing(c.loss.label_smoothing);
  out.set_ethnicity_balance(c.ethnicity_balance);
  out.set_ema_decay(c.ema_decay);
  out.set_mixup_alpha(c.mixup_alpha);
  out.set_time_budget_seconds(c.time_budget_seconds);
  auto* a = out.mutable_augment();
  a->set_enabled(c.augment.enabled);
  a->set_flip_probability(c.augment.flip_probability);
  a->set_rotate_probability(c.augment.rotate_probability);
  a->set_max_rotate_degrees(c.augment.max_rotate_degrees);
  a->set_zoom_probability(c.augment.zoom_probability);
  a->set_max_zoom(c.augment.max_zoom);
  a->set_warp_probability(c.augment.warp_probability);
  a->set_max_warp(c.augment.max_warp);
  a->set_lighting_probability(c.augment.lighting_probability);
  a->set_max_lighting(c.augment.max_lighting);
  a->set_erase_probability(c.augment.erase_probability);
  a->set_max_erase_area(c.augment.max_erase_area);
  out.set_seed(c.seed);
  out.set_pretrained_encoder(c.pretrained_encoder);
  out.set_loader_workers(c.loader_workers);
  out.set_precision(c.precision);
  out.set_world_size(c.world_size);
  return out;
}

v1::ValidationMetrics ToProto(const EvalMetrics& m) {
  v1::ValidationMetrics out;
  out.set_n(m.n);
  out.set_loss(m.loss);
  out.set_age_loss(m.task_losses[0]);
  out.set_gender_loss(m.task_losses[1]);
  out.set_ethnicity_loss(m.task_losses[2]);
  out.set_age_rmse(m.age_rmse);
  out.set_age_mae_years(m.age_mae_years);
  out.set_gender_accuracy(m.gender_accuracy);
  out.set_ethnicity_accuracy(m.ethnicity_accuracy);
  CopyArray(m.gender_class_accuracy, out.mutable_gender_class_accuracy());
  CopyArray(m.ethnicity_class_accuracy, out.mutable_ethnicity_class_accuracy());
  out.set_gender_ece(m.gender_ece);
  out.set_ethnicity_ece(m.ethnicity_ece);
  for (const auto& g : m.groups) {
    auto* group = out.add_groups();
    group->set_dimension(g.dimension);
    group->set_group(g.group);
    group->set_n(g.n);
    group->set_age_mae_years(g.age_mae_years);
    group->set_gender_accuracy(g.gender_accuracy);
    group->set_ethnicity_accuracy(g.ethnicity_accuracy);
  }
  return out;
}

v1::Calibration ToProto(const Calibration& c) {
  v1::Calibration out;
  out.set_gender_temperature(c.gender_temperature);
  out.set_ethnicity_temperature(c.ethnicity_temperature);
  out.set_age_coverage(c.age_coverage);
  out.set_age_log_halfwidth(c.age_log_halfwidth);
  return out;
}

v1::Calibration ToProto(const CalibrationReport& report) {
  v1::Calibration out = ToProto(report.calibration);
  out.set_n(report.n);
  out.set_gender_ece_before(report.gender_ece_before);
  out.set_gender_ece_after(report.gender_ece_after);
  out.set_ethnicity_ece_before(report.ethnicity_ece_before);
  out.set_ethnicity_ece_after(report.ethnicity_ece_after);
  return out;
}

v1::EpochMetrics ToProto(const EpochMetrics& m) {
  v1::EpochMetrics out;
  out.set_stage(static_cast<int>(m.stage));
  out.set_epoch(m.epoch);
  out.set_train_loss(m.train_loss);
  CopyArray(m.train_task_losses, out.mutable_train_task_losses());
  CopyArray(m.log_variances, out.mutable_log_variances());
  CopyArray(m.effective_weights, out.mutable_effective_weights());
  out.set_images_per_s(m.images_per_s);
  out.set_seconds(m.seconds);
  *out.mutable_validation() = ToProto(m.validation);
  return out;
}

v1::Progress ToProto(const StepProgress& p, double eta_seconds) {
  v1::Progress out;
  out.set_stage(static_cast<int>(p.stage));
  out.set_epoch(p.epoch);
  out.set_total_epochs(p.total_epochs);
  out.set_step(p.step);
  out.set_steps_in_epoch(p.steps_in_epoch);
  out.set_global_step(p.global_step);
  out.set_total_steps(p.total_steps);
  out.set_images_per_s(p.images_per_s);
  out.set_eta_seconds(eta_seconds);
  out.set_loss(p.loss);
  return out;
}

const char* JobStateName(v1::JobState state) {
  switch (state) {
    case v1::JOB_STATE_QUEUED: return "queued";
    case v1::JOB_STATE_RUNNING: return "running";
    case v1::JOB_STATE_SUCCEEDED: return "succeeded";
    case v1::JOB_STATE_FAILED: return "failed";
    case v1::JOB_STATE_CANCELLED: return "cancelled";
    default: return "unspecified";
  }
}

}  // namespace facet::server
