// Conversions between the API's messages and the core library's plain structs.
// Pure functions, thread-safe. ToCoreConfig throws std::invalid_argument naming a field it cannot map (fixed_weights,
// age_loss); ranges are ValidateTrainingConfig's.
#pragma once

#include "core/train/trainer.h"
#include "facet/v1/facet.pb.h"

namespace facet::server {

// Applies the request's set fields over the core defaults. Paths are copied as given (the caller resolves them).
TrainingConfig ToCoreConfig(const v1::TrainingConfig& config);
// Every field filled in, so that a job's config shows what the run used.
v1::TrainingConfig ToProtoConfig(const TrainingConfig& config);

v1::EpochMetrics ToProto(const EpochMetrics& m);
v1::ValidationMetrics ToProto(const EvalMetrics& m);
v1::Progress ToProto(const StepProgress& p, double eta_seconds);
v1::Calibration ToProto(const CalibrationReport& report);
v1::Calibration ToProto(const Calibration& calibration);  // a model file's, without fitting figures

const char* JobStateName(v1::JobState state);  // "queued", "running", ...

}  // namespace facet::server
