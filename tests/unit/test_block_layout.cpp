#include <gtest/gtest.h>

#include "partition/block_layout.hpp"

namespace popcode {
namespace {

TEST(BlockLayout, CountsAreBalancedContiguousAndCoverEverything) {
  for (std::int64_t n : {0, 1, 2, 3, 7, 10, 11, 1000, 1001}) {
    for (int p : {1, 2, 3, 4, 7, 16}) {
      const BlockLayout l(n, p);
      std::int64_t total = 0;
      for (int r = 0; r < p; ++r) {
        EXPECT_EQ(l.offset(r), total) << "n=" << n << " p=" << p << " r=" << r;
        EXPECT_LE(l.count(0) - l.count(r), 1);
        total += l.count(r);
      }
      EXPECT_EQ(total, n);
      EXPECT_EQ(l.offset(p), n);
      for (std::int64_t i = 0; i < n; ++i) {
        const int owner = l.owner(i);
        EXPECT_TRUE(l.range(owner).contains(i)) << "n=" << n << " p=" << p << " i=" << i;
      }
    }
  }
}

TEST(BlockLayout, MatchesPetscDecideRule) {
  // 10 items over 4 parts: PETSc gives 3, 3, 2, 2.
  const BlockLayout l(10, 4);
  EXPECT_EQ(l.count(0), 3);
  EXPECT_EQ(l.count(1), 3);
  EXPECT_EQ(l.count(2), 2);
  EXPECT_EQ(l.count(3), 2);
  EXPECT_EQ(l.offset(2), 6);
}

TEST(BlockLayout, MoreRanksThanItemsLeavesTrailingRanksEmpty) {
  const BlockLayout l(2, 5);
  EXPECT_EQ(l.count(0), 1);
  EXPECT_EQ(l.count(1), 1);
  for (int r = 2; r < 5; ++r) {
    EXPECT_EQ(l.count(r), 0);
    EXPECT_TRUE(l.range(r).empty());
    EXPECT_EQ(l.offset(r), 2);
  }
}

TEST(BlockLayout, RejectsInvalidArguments) {
  EXPECT_THROW(BlockLayout(-1, 2), std::invalid_argument);
  EXPECT_THROW(BlockLayout(10, 0), std::invalid_argument);
  const BlockLayout l(10, 3);
  EXPECT_THROW(l.owner(10), std::out_of_range);
  EXPECT_THROW(l.owner(-1), std::out_of_range);
  EXPECT_THROW(l.count(3), std::out_of_range);
}

}  // namespace
}  // namespace popcode
