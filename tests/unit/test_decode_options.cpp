// The class-merge option of decode-category: names or indices, groups of two or more, each class once.
#include <gtest/gtest.h>

#include <cmath>

#if POPCODE_WITH_TORCH
#include "solvers/decode_category.hpp"
#include "solvers/decode_orientation.hpp"

namespace popcode {
namespace {

TEST(DecodeCategory, ParsesClassMerges) {
  const std::vector<std::string> names = {"birds", "cats", "flowers", "mice", "reptiles"};
  EXPECT_TRUE(parse_class_merge("", names).empty());
  const auto groups = parse_class_merge("birds, 2; cats,mice,4", names);
  ASSERT_EQ(groups.size(), 2u);
  EXPECT_EQ(groups[0], (std::vector<std::int32_t>{0, 2}));
  EXPECT_EQ(groups[1], (std::vector<std::int32_t>{1, 3, 4}));
  EXPECT_THROW(parse_class_merge("birds", names), UsageError);          // a group of one
  EXPECT_THROW(parse_class_merge("birds,dogs", names), UsageError);     // unknown name
  EXPECT_THROW(parse_class_merge("0,5", names), UsageError);            // index out of range
  EXPECT_THROW(parse_class_merge("0,1;1,2", names), UsageError);        // a class in two groups
  try {
    parse_class_merge("cats,dogs", names);
  } catch (const UsageError& e) {
    EXPECT_NE(std::string(e.what()).find("\"dogs\" is neither a class name nor a class index 0..4"), std::string::npos)
        << e.what();
  }
}

// The circular error of decode-orientation: shortest way round the circle, in degrees of the angle.
TEST(DecodeOrientation, AngularErrorIsTheShortestWayRoundThePeriod) {
  const double deg = M_PI / 180.0;
  EXPECT_NEAR(angular_error_degrees(10 * deg, 350 * deg, 360), 20.0, 1e-12);   // across 0
  EXPECT_NEAR(angular_error_degrees(350 * deg, 10 * deg, 360), 20.0, 1e-12);
  EXPECT_NEAR(angular_error_degrees(0, 180 * deg, 360), 180.0, 1e-12);          // the largest for directions
  EXPECT_NEAR(angular_error_degrees(0, 180 * deg, 180), 0.0, 1e-12);            // the same orientation
  EXPECT_NEAR(angular_error_degrees(5 * deg, 175 * deg, 180), 10.0, 1e-12);
  EXPECT_NEAR(angular_error_degrees(30 * deg, 750 * deg, 360), 0.0, 1e-9);      // angles beyond one turn
  EXPECT_NEAR(angular_error_degrees(0, 90 * deg, 180), 90.0, 1e-12);
}

}  // namespace
}  // namespace popcode
#endif
