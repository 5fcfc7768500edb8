#include "core/labels.h"

#include <gtest/gtest.h>

#include <cmath>

namespace facet {
namespace {

TEST(ParseUtkFaceName, ParsesWellFormedNames) {
  const auto parsed = ParseUtkFaceName("26_1_2_20170116174525125.jpg.chip.jpg");
  ASSERT_TRUE(parsed.labels.has_value());
  EXPECT_EQ(parsed.problem, NameProblem::kNone);
  EXPECT_EQ(parsed.labels->age, 26);
  EXPECT_EQ(parsed.labels->gender, 1);
  EXPECT_EQ(parsed.labels->ethnicity, 2);
  EXPECT_TRUE(ParseUtkFaceName("1_0_4_20161221193006548.jpg").labels.has_value());  // without .chip.jpg
  EXPECT_TRUE(ParseUtkFaceName("116_1_0_20170120134725991.JPG").labels.has_value());
}

TEST(ParseUtkFaceName, RejectsTheMalformedNamesOfTheRealDataSet) {
  // These three files exist in UTKFace: the race field is missing.
  for (const char* name : {"39_1_20170116174525125.jpg.chip.jpg", "61_1_20170109142408075.jpg.chip.jpg",
                           "61_3_20170109150557335.jpg.chip.jpg"}) {
    const auto parsed = ParseUtkFaceName(name);
    EXPECT_FALSE(parsed.labels.has_value()) << name;
    EXPECT_EQ(parsed.problem, NameProblem::kMalformed) << name;
  }
  for (const char* name : {"a_1_2_2017.jpg", "26_x_2_2017.jpg", "26_1__2017.jpg", "_1_2_2017.jpg",
                           "26_1_2_3_4.jpg", "-3_1_2_2017.jpg", "26_1_2.jpg", "99999999999_1_2_2017.jpg"}) {
    EXPECT_EQ(ParseUtkFaceName(name).problem, NameProblem::kMalformed) << name;
  }
}

TEST(ParseUtkFaceName, FlagsOutOfRangeLabels) {
  EXPECT_EQ(ParseUtkFaceName("26_2_0_2017.jpg").problem, NameProblem::kLabelOutOfRange);
  EXPECT_EQ(ParseUtkFaceName("26_0_5_2017.jpg").problem, NameProblem::kLabelOutOfRange);
  EXPECT_EQ(ParseUtkFaceName("117_0_0_2017.jpg").problem, NameProblem::kLabelOutOfRange);
  EXPECT_EQ(ParseUtkFaceName("0_0_0_2017.jpg").problem, NameProblem::kNone);  // age 0 is a valid label
}

TEST(ParseUtkFaceName, IgnoresFilesThatAreNotImages) {
  EXPECT_EQ(ParseUtkFaceName("README.md").problem, NameProblem::kNotAnImage);
  EXPECT_EQ(ParseUtkFaceName("labels.csv").problem, NameProblem::kNotAnImage);
  EXPECT_EQ(ParseUtkFaceName("26_1_2_2017.png").problem, NameProblem::kNotAnImage);
}

TEST(ParseUtkFaceName, RoundTripsWithMakeUtkFaceName) {
  const FaceLabels labels{42, 1, 3};
  const auto parsed = ParseUtkFaceName(MakeUtkFaceName(labels, "20260101000000001"));
  ASSERT_TRUE(parsed.labels.has_value());
  EXPECT_EQ(parsed.labels->age, 42);
  EXPECT_EQ(parsed.labels->gender, 1);
  EXPECT_EQ(parsed.labels->ethnicity, 3);
}

TEST(AgeTarget, IsScaledLogAgeClampedAtOneYear) {
  EXPECT_DOUBLE_EQ(AgeToTarget(0), 0.0);
  EXPECT_DOUBLE_EQ(AgeToTarget(1), 0.0);
  EXPECT_NEAR(AgeToTarget(116), std::log(116.0) / 4.75, 1e-12);
  EXPECT_NEAR(TargetToAge(AgeToTarget(37)), 37.0, 1e-9);
}

}  // namespace
}  // namespace facet
