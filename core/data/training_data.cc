#include "core/data/training_data.h"

#include <stdexcept>

namespace facet {
namespace {

ScanResult ScanNonEmpty(const std::string& folder) {
  ScanResult scan = ScanUtkFaceFolder(folder);
  if (scan.samples.empty()) throw std::runtime_error("no usable UTKFace images: " + scan.report.Summary());
  return scan;
}

}  // namespace

TrainingData OpenTrainingData(const DataConfig& config, const BatchShape& shape, uint64_t seed, DataShard shard) {
  ValidateDataConfig(config);
  TrainingData data;
  ScanResult scan = ScanNonEmpty(config.data_dir);
  data.train_report = scan.report;
  std::vector<Sample> samples = Subsample(scan.samples, config.max_images, seed);
  std::vector<Sample> train, validation;
  if (config.val_dir.empty()) {
    std::tie(train, validation) = SplitTrainValidation(samples, config.val_fraction, seed);
    data.validation_report = scan.report;
  } else {
    ScanResult val_scan = ScanNonEmpty(config.val_dir);
    data.validation_report = val_scan.report;
    train = std::move(samples);
    validation = std::move(val_scan.samples);
  }

  LoaderOptions train_options;
  train_options.image_size = shape.image_size;
  train_options.batch_size = shape.batch_size;
  train_options.workers = config.loader_workers;
  train_options.pin_memory = shape.pin_memory;
  LoaderOptions validation_options = train_options;
  train_options.shuffle = true;
  train_options.ethnicity_balance = config.ethnicity_balance;
  train_options.drop_last = true;
  train_options.augment = config.augment.enabled;
  train_options.augment_options = config.augment;
  train_options.shard = shard.index;
  train_options.num_shards = shard.count;
  if (shard.count > 1) {
    const size_t n = validation.size(), k = static_cast<size_t>(shard.count), i = static_cast<size_t>(shard.index);
    validation = std::vector<Sample>(validation.begin() + n * i / k, validation.begin() + n * (i + 1) / k);
  }
  data.train = std::make_unique<UtkFaceLoader>(std::move(train), train_options);
  data.validation = std::make_unique<UtkFaceLoader>(std::move(validation), validation_options);
  return data;
}

}  // namespace facet
