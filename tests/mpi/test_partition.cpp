// Block layouts and neuron <-> stimulus redistribution at the rank count of the run (1, 2 and 3 in ctest).
#include <gtest/gtest.h>

#include "partition/redistribute.hpp"

namespace popcode {
namespace {

double value(std::int64_t neuron, std::int64_t sample) { return static_cast<double>(neuron) * 1000.0 + static_cast<double>(sample) + 0.25; }

TEST(Partition, LayoutsAgreeOnEveryRank) {
  const Context ctx(MPI_COMM_WORLD);
  const BlockLayout l(101, ctx.size());
  std::int64_t mine = l.count(ctx.rank());
  EXPECT_EQ(ctx.sum(mine), 101);
  EXPECT_EQ(ctx.exclusive_prefix(mine), l.offset(ctx.rank()));
}

TEST(Partition, RedistributionRoundTripsForUnevenAndEmptyBlocks) {
  const Context ctx(MPI_COMM_WORLD);
  for (std::int64_t n : {1, 2, 5, 17}) {
    for (std::int64_t s : {1, 3, 8}) {
      const BlockLayout neurons(n, ctx.size()), samples(s, ctx.size());
      const Range mine = neurons.range(ctx.rank());
      Matrix block(mine.size(), s);
      for (std::int64_t j = 0; j < s; ++j)
        for (std::int64_t i = 0; i < mine.size(); ++i) block(i, j) = value(mine.begin + i, j);
      const Matrix by_sample = neuron_to_sample_blocks(ctx, block, neurons, samples);
      const Range my_samples = samples.range(ctx.rank());
      ASSERT_EQ(by_sample.rows(), n);
      ASSERT_EQ(by_sample.cols(), my_samples.size());
      for (std::int64_t j = 0; j < my_samples.size(); ++j)
        for (std::int64_t i = 0; i < n; ++i) ASSERT_EQ(by_sample(i, j), value(i, my_samples.begin + j)) << n << "x" << s;
      const Matrix back = sample_to_neuron_blocks(ctx, by_sample, neurons, samples);
      ASSERT_EQ(back.rows(), block.rows());
      ASSERT_EQ(back.cols(), block.cols());
      for (std::int64_t k = 0; k < block.size(); ++k) ASSERT_EQ(back.data()[k], block.data()[k]);
    }
  }
}

TEST(Partition, RejectsMismatchedBlocks) {
  const Context ctx(MPI_COMM_WORLD);
  const BlockLayout neurons(10, ctx.size()), samples(4, ctx.size());
  Matrix wrong(neurons.count(ctx.rank()) + 1, 4);
  EXPECT_THROW(neuron_to_sample_blocks(ctx, wrong, neurons, samples), InternalError);
}

TEST(Partition, AgreementRaisesTheSameErrorOnEveryRank) {
  const Context ctx(MPI_COMM_WORLD);
  const bool failing = ctx.rank() == ctx.size() - 1;
  try {
    ctx.agree(failing, "rank-local problem", ExitCode::bad_input);
    FAIL() << "agree did not throw";
  } catch (const Error& e) {
    EXPECT_TRUE(e.collective());
    EXPECT_EQ(e.code(), ExitCode::bad_input);
    EXPECT_NE(std::string(e.what()).find("rank-local problem"), std::string::npos);
  }
  EXPECT_NO_THROW(ctx.agree(false, "", ExitCode::bad_input));
}

TEST(Partition, ReplicatedStateIsComparedAcrossRanks) {
  const Context ctx(MPI_COMM_WORLD);
  std::vector<std::int32_t> labels(1000);
  for (std::size_t i = 0; i < labels.size(); ++i) labels[i] = static_cast<std::int32_t>(i % 7);
  EXPECT_TRUE(ctx.same_on_all_ranks(std::as_bytes(std::span<const std::int32_t>(labels))));
  EXPECT_TRUE(ctx.same_on_all_ranks({}));
  // One label differs on the last rank only (at 1 rank there is nothing to differ from).
  if (ctx.rank() == ctx.size() - 1) labels[517] = 3;
  EXPECT_EQ(ctx.same_on_all_ranks(std::as_bytes(std::span<const std::int32_t>(labels))), ctx.size() == 1);
  // A different length is different content too.
  std::vector<std::int32_t> shorter(static_cast<std::size_t>(10 + (ctx.rank() == 0 ? 1 : 0)), 0);
  EXPECT_EQ(ctx.same_on_all_ranks(std::as_bytes(std::span<const std::int32_t>(shorter))), ctx.size() == 1);
}

}  // namespace
}  // namespace popcode
