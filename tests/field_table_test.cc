// The training settings' table against the API: every field the CLI sends is a field of v1.TrainingConfig, and the
// server's conversions carry each one both ways.
#include "core/train/training_config.h"
#include "proto/field_path.h"
#include "server/proto_convert.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <stdexcept>

namespace facet::server {
namespace {

TEST(FieldTable, EveryApiFieldOfTheTableIsAFieldOfTheMessage) {
  const v1::TrainingConfig empty;
  for (const auto& field : TrainingFields()) {
    if (field.flag.empty()) continue;  // the core's own
    SCOPED_TRACE(field.name);
    EXPECT_NO_THROW(proto::HasNumberAt(empty, field.name));
    EXPECT_FALSE(proto::HasNumberAt(empty, field.name));  // unset: the server's default applies
  }
  EXPECT_THROW(proto::HasNumberAt(empty, "frozen.no_such_field"), std::logic_error);
  EXPECT_THROW(proto::HasNumberAt(empty, "data_dir"), std::logic_error);  // a string, not a number
}

// A value inside each range, different from the default, set through the API message, reaches the core config,
// and comes back the same in the job's config.
TEST(FieldTable, TheServerCarriesEveryFieldBothWays) {
  const TrainingConfig defaults;
  v1::TrainingConfig request;
  request.set_data_dir("faces");
  for (const auto& field : TrainingFields()) {
    if (field.flag.empty()) continue;
    const double value = field.integer ? std::floor((field.lo + std::min(field.hi, 1e6)) / 2) + 1
                                       : field.lo + (std::min(field.hi, 1e6) - field.lo) * 0.37;
    ASSERT_NE(value, field.get(defaults)) << field.name;
    proto::SetNumberAt(request, field.name, value);
  }
  const TrainingConfig core = ToCoreConfig(request);
  const v1::TrainingConfig back = ToProtoConfig(core);
  for (const auto& field : TrainingFields()) {
    if (field.flag.empty()) continue;
    SCOPED_TRACE(field.name);
    EXPECT_DOUBLE_EQ(field.get(core), proto::GetNumberAt(request, field.name));
    EXPECT_DOUBLE_EQ(proto::GetNumberAt(back, field.name), proto::GetNumberAt(request, field.name));
  }
  EXPECT_THROW(proto::SetNumberAt(request, "batch_size", 2.5), std::invalid_argument);
  EXPECT_THROW(proto::SetNumberAt(request, "batch_size", 1e12), std::invalid_argument);
}

}  // namespace
}  // namespace facet::server
