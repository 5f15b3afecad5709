#include <gtest/gtest.h>

#include "solvers/preprocess.hpp"

namespace popcode {
namespace {

// compute_means.m with nsplits = 2: the first floor(m/2) presentations in time order average into repeat 1,
// the floor(m/2) from ceil(m/2) on into repeat 2; a middle presentation of an odd m is unused.
TEST(RepeatSplit, FollowsComputeMeans) {
  //                      p: 0  1  2  3  4  5  6  7  8  9 10
  std::vector<std::int32_t> ids = {3, 1, 3, 2, 1, 3, 2, 2, 2, 1, 4};
  std::vector<double> times = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10};
  times[4] = 20;  // image 1's presentation 4 comes last in time
  std::vector<std::int64_t> kept(ids.size());
  for (std::size_t i = 0; i < kept.size(); ++i) kept[i] = static_cast<std::int64_t>(i);
  const RepeatSplit s = split_repeats(ids, times, kept);
  ASSERT_EQ(s.image_ids, (std::vector<std::int32_t>{1, 2, 3}));  // image 4 seen once: dropped
  EXPECT_EQ(s.images_unrepeated, 1);
  // image 1: times order 1, 9, 4 (m = 3): repeat 1 = {1}, repeat 2 = {4}, 9 unused.
  EXPECT_EQ(s.first[0], (std::vector<std::int64_t>{1}));
  EXPECT_EQ(s.second[0], (std::vector<std::int64_t>{4}));
  // image 2: 3, 6, 7, 8 (m = 4): {3, 6} and {7, 8}.
  EXPECT_EQ(s.first[1], (std::vector<std::int64_t>{3, 6}));
  EXPECT_EQ(s.second[1], (std::vector<std::int64_t>{7, 8}));
  // image 3: 0, 2, 5: {0} and {5}.
  EXPECT_EQ(s.first[2], (std::vector<std::int64_t>{0}));
  EXPECT_EQ(s.second[2], (std::vector<std::int64_t>{5}));
  EXPECT_EQ(s.presentations_unused, 1 + 1 + 1);  // middle of image 1, image 3, and image 4's single one
}

TEST(RepeatSplit, OnlyKeptPresentationsCount) {
  const std::vector<std::int32_t> ids = {0, 0, 1, 1};
  const std::vector<double> times = {0, 1, 2, 3};
  const RepeatSplit s = split_repeats(ids, times, {0, 2, 3});
  EXPECT_EQ(s.image_ids, (std::vector<std::int32_t>{1}));
}

}  // namespace
}  // namespace popcode
