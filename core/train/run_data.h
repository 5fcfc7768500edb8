// The data a TrainingConfig names, opened in the shape its model takes: OpenTrainingData (core/data) with the
// run's image size, global batch, seed and device. Needs OpenCV (facet_imaging).
#pragma once

#include "core/data/training_data.h"
#include "core/train/training_config.h"

namespace facet {

// Throws as OpenTrainingData(DataConfig, ...) does, and std::invalid_argument for a device this build lacks.
TrainingData OpenTrainingData(const TrainingConfig& config, DataShard shard = {});

}  // namespace facet
