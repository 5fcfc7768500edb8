#include "core/data/data_config.h"

#include "core/util/range_check.h"

#include <algorithm>
#include <limits>

namespace facet {

int64_t ValidationCount(int64_t samples, double validation_fraction) {
  return static_cast<int64_t>(validation_fraction * static_cast<double>(samples));
}

int64_t TrainingImageCount(const DataConfig& data, int64_t usable) {
  if (data.max_images > 0) usable = std::min<int64_t>(usable, data.max_images);
  return data.val_dir.empty() ? usable - ValidationCount(usable, data.val_fraction) : usable;
}

const std::vector<ConfigField<DataConfig>>& DataFields() {
  static const std::vector<ConfigField<DataConfig>> fields = [] {
    std::vector<ConfigField<DataConfig>> f = {
        {"val_fraction", "val-fraction", "seeded share of --data that validates (without --val-dir)", 0.01, 0.9,
         false, false, 1.0, FACET_FIELD_ACCESS(val_fraction), [](const DataConfig& c) { return c.val_dir.empty(); }},
        {"max_images", "max-images", "seeded subset of --data (0: all)", 0,
         static_cast<double>(std::numeric_limits<int>::max()), false, true, 1.0, FACET_FIELD_ACCESS(max_images),
         nullptr},
        {"ethnicity_balance", "ethnicity-balance",
         "draw training faces weighted by (faces of their ethnicity)^-X; 1 sees every ethnicity equally often, 0 "
         "(off) every face once an epoch",
         0.0, 1.0, false, false, 1.0, FACET_FIELD_ACCESS(ethnicity_balance), nullptr},
        {"loader_workers", "workers", "decode/augment threads", 0, 64, false, true, 1.0,
         FACET_FIELD_ACCESS(loader_workers), nullptr},
    };
    AppendLifted(f, AugmentFields(), &DataConfig::augment);
    return f;
  }();
  return fields;
}

void ValidateDataConfig(const DataConfig& c) {
  if (c.data_dir.empty()) FailField("data_dir", "is required");
  for (const auto& field : DataFields()) field.Check(c);
}

}  // namespace facet
