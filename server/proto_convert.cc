#include "server/proto_convert.h"

#include "proto/field_path.h"

namespace facet::server {
namespace {

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
  c.data.data_dir = in.data_dir();
  c.data.val_dir = in.val_dir();
  for (const auto& field : TrainingFields()) {
    if (!field.flag.empty() && proto::HasNumberAt(in, field.name)) field.set(c, proto::GetNumberAt(in, field.name));
  }
  if (in.has_arch()) c.arch = in.arch();
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
  if (in.augment().has_enabled()) c.data.augment.enabled = in.augment().enabled();
  if (in.has_seed()) c.seed = in.seed();
  c.pretrained_encoder = in.pretrained_encoder();
  if (in.has_precision()) c.precision = in.precision();
  return c;
}

v1::TrainingConfig ToProtoConfig(const TrainingConfig& c) {
  v1::TrainingConfig out;
  out.set_data_dir(c.data.data_dir);
  out.set_val_dir(c.data.val_dir);
  for (const auto& field : TrainingFields()) {
    if (!field.flag.empty()) proto::SetNumberAt(out, field.name, field.get(c));
  }
  out.set_arch(c.arch);
  out.set_loss_weighting(ToProto(c.loss.weighting));
  if (c.loss.weighting == LossWeighting::kFixed) CopyArray(c.loss.fixed_weights, out.mutable_fixed_weights());
  out.set_age_loss(AgeLossName(c.loss.age_loss));
  out.mutable_augment()->set_enabled(c.data.augment.enabled);
  out.set_seed(c.seed);
  out.set_pretrained_encoder(c.pretrained_encoder);
  out.set_precision(c.precision);
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
