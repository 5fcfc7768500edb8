// What a training run reads and how it splits it. Plain data, no LibTorch or OpenCV: the CLI, the server's
// validation and the core share it, and TrainingConfig holds one.
#pragma once

#include "core/data/augment_options.h"

#include <cstdint>
#include <string>
#include <vector>

namespace facet {

struct DataConfig {
  // Paths are used as given; the server resolves them inside its data root before they get here.
  std::string data_dir;
  std::string val_dir;         // when set, all of data_dir trains and val_dir validates
  double val_fraction = 0.2;   // otherwise this share of data_dir, chosen by seed, validates (ValidationCount)
  int max_images = 0;          // seeded subset of data_dir (0: all)
  double ethnicity_balance = 0.0;  // training draws by ethnicity; see LoaderOptions::ethnicity_balance
  int loader_workers = 2;      // decode/augment threads
  AugmentOptions augment;
};

// The split rule: of `samples` faces, how many validate when a share `validation_fraction` of them does
// (floor(fraction * samples)). SplitTrainValidation cuts there, and the server sizes a job's batches with it.
int64_t ValidationCount(int64_t samples, double validation_fraction);

// How many faces train when data_dir holds `usable` of them: the subset, less the validation split unless
// val_dir validates.
int64_t TrainingImageCount(const DataConfig& data, int64_t usable);

// The numeric settings (AugmentFields included) with their API names, flags, help and ranges.
const std::vector<ConfigField<DataConfig>>& DataFields();

// Throws std::invalid_argument whose message starts with the offending field's name ("val_fraction: ..."): a
// missing data_dir, or a value outside its DataFields() range. Checks values only; whether folders exist is for
// whoever opens them.
void ValidateDataConfig(const DataConfig& data);

}  // namespace facet
