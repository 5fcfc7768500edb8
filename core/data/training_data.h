// Turns a DataConfig into training and validation loaders.
// OpenTrainingData is thread-safe (it shares nothing); the loaders it returns follow UtkFaceLoader's thread contract.
#pragma once

#include "core/data/data_config.h"
#include "core/data/loader.h"

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

// The batches the model takes.
struct BatchShape {
  int image_size = 64;
  int batch_size = 64;      // the global batch of a data-parallel run
  bool pin_memory = false;  // page-locked batches, for a CUDA device
};

// Scans the folders, subsets and splits by seed (or uses val_dir), and builds the loaders: training shuffles,
// augments and drops the last partial batch; validation does none of these. Throws std::invalid_argument as
// ValidateDataConfig does, and std::runtime_error when a folder is missing or yields no usable image, naming the
// folder and what was skipped. With a shard, training reads its slice of every global batch and validation a
// contiguous slice of the set.
TrainingData OpenTrainingData(const DataConfig& data, const BatchShape& shape, uint64_t seed, DataShard shard = {});

}  // namespace facet
