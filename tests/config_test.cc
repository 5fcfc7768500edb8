// The tables of settings (AugmentFields, DataFields, TrainingFields): where each default, range and help lives, and
// what the core's validation, the server and facetctl read. And the split rule.
#include "core/data/data_config.h"
#include "core/data/utkface_dataset.h"
#include "core/train/training_config.h"

#include <gtest/gtest.h>

#include <cmath>
#include <set>
#include <stdexcept>
#include <string>

namespace facet {
namespace {

TEST(TrainingFields, EveryDefaultIsAcceptedAndEveryNameAndFlagIsUnique) {
  const TrainingConfig defaults;
  std::set<std::string> names, flags;
  for (const auto& field : TrainingFields()) {
    SCOPED_TRACE(field.name);
    EXPECT_TRUE(names.insert(field.name).second);
    if (!field.flag.empty()) {
      EXPECT_TRUE(flags.insert(field.flag).second) << field.flag;
    }
    EXPECT_FALSE(field.help.empty());
    EXPECT_LT(field.lo, field.hi);
    EXPECT_NO_THROW(field.Check(defaults));
  }
  // Each table holds its part: data and augmentation fields appear in the training table once.
  EXPECT_EQ(names.count("val_fraction"), 1u);
  EXPECT_EQ(names.count("augment.max_zoom"), 1u);
  EXPECT_EQ(names.count("frozen.lr_max"), 1u);
}

// Each field's range is what ValidateTrainingConfig enforces: just outside it fails naming the field, the edges
// pass. Through the table's own get/set, so a field added to the table is covered without a new test.
TEST(TrainingFields, ValidationRefusesJustOutsideEachRangeAndAcceptsItsEdges) {
  for (const auto& field : TrainingFields()) {
    SCOPED_TRACE(field.name);
    TrainingConfig config;
    config.data.data_dir = "faces";
    const auto with = [&](double value) {
      TrainingConfig c = config;
      field.set(c, value);
      return c;
    };
    const double step = field.integer ? 1.0 : std::max(1e-12, std::abs(field.hi) * 1e-6);
    for (const double bad : {field.lo - step, field.hi_exclusive ? field.hi : field.hi + step, std::nan("")}) {
      if (field.integer && (std::isnan(bad) || bad > 2147483647.0)) continue;  // what an int cannot hold
      const TrainingConfig c = with(bad);
      if (field.applies && !field.applies(c)) continue;
      try {
        field.Check(c);
        ADD_FAILURE() << bad << " was accepted";
      } catch (const std::invalid_argument& e) {
        EXPECT_EQ(std::string(e.what()).rfind(field.name + ":", 0), 0u) << e.what();
      }
    }
    EXPECT_NO_THROW(field.Check(with(field.lo)));
    if (!field.hi_exclusive) {
      EXPECT_NO_THROW(field.Check(with(field.hi)));
    }
  }
  TrainingConfig bad_batch;
  bad_batch.data.data_dir = "faces";
  bad_batch.batch_size = 1;
  try {
    ValidateTrainingConfig(bad_batch);
    ADD_FAILURE() << "batch_size 1 was accepted";
  } catch (const std::invalid_argument& e) {
    EXPECT_EQ(std::string(e.what()).rfind("batch_size: must be in [2, 4096]", 0), 0u) << e.what();
  }
}

TEST(TrainingFields, ConditionalRangesApplyOnlyWhenTheirSettingIsUsed) {
  TrainingConfig c;
  c.data.data_dir = "faces";
  c.data.val_fraction = 0.0;
  EXPECT_THROW(ValidateTrainingConfig(c), std::invalid_argument);
  c.data.val_dir = "other";  // a validation folder: the fraction is not used
  EXPECT_NO_THROW(ValidateTrainingConfig(c));
  c.frozen.epochs = 0;
  c.frozen.lr_max = 0.0;  // a stage that does not run needs no learning rate
  EXPECT_NO_THROW(ValidateTrainingConfig(c));
  c.ema_decay = 1.0;  // excluded: an average that never moves
  EXPECT_THROW(ValidateTrainingConfig(c), std::invalid_argument);
}

// The split rule: what the server promises a job (TrainingImageCount) is what the split makes.
TEST(DataConfig, TrainingImageCountIsWhatTheSplitTrainsOn) {
  std::vector<Sample> samples;
  for (int i = 0; i < 137; ++i) samples.push_back({"face-" + std::to_string(i), FaceLabels{20 + i % 50, i % 2, i % 5}});
  for (const double fraction : {0.01, 0.2, 0.33, 0.9}) {
    for (const int max_images : {0, 50, 137, 500}) {
      DataConfig data;
      data.data_dir = "faces";
      data.val_fraction = fraction;
      data.max_images = max_images;
      const auto subset = Subsample(samples, data.max_images, 7);
      const auto [train, validation] = SplitTrainValidation(subset, data.val_fraction, 7);
      EXPECT_EQ(TrainingImageCount(data, static_cast<int64_t>(samples.size())), static_cast<int64_t>(train.size()))
          << fraction << " " << max_images;
      EXPECT_EQ(ValidationCount(static_cast<int64_t>(subset.size()), fraction), static_cast<int64_t>(validation.size()));
    }
  }
  DataConfig with_folder;
  with_folder.data_dir = "faces";
  with_folder.val_dir = "held-out";
  EXPECT_EQ(TrainingImageCount(with_folder, 137), 137);
}

}  // namespace
}  // namespace facet
