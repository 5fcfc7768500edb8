// Turns a TrainingConfig's data settings into training and validation loaders.
#pragma once

#include "core/data/loader.h"
#include "core/train/training_config.h"

#include <memory>

namespace facet {

struct TrainingData {
  std::unique_ptr<UtkFaceLoader> train;
  std::unique_ptr<UtkFaceLoader> validation;
  ScanReport train_report;
  ScanReport validation_report;  // the same folder as train_report when validation is a split
};

// Which part of the data one process of a data-parallel run reads.
struct DataShard {
  int index = 0;
  int count = 1;
};

// Scans the folders, subsets and splits by seed (or uses val_dir), and builds the loaders: training shuffles,
// augments and drops the last partial batch; validation does none of these. Throws std::runtime_error when a
// folder is missing or yields no usable image, naming the folder and what was skipped.
// With a shard, training reads its slice of every global batch and validation a contiguous slice of the set.
TrainingData OpenTrainingData(const TrainingConfig& config, DataShard shard = {});

}  // namespace facet
