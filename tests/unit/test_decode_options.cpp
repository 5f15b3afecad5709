// The class-merge option of decode-category: names or indices, groups of two or more, each class once.
#include <gtest/gtest.h>

#if POPCODE_WITH_TORCH
#include "solvers/decode_category.hpp"

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

}  // namespace
}  // namespace popcode
#endif
