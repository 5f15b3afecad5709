#include <gtest/gtest.h>

#include <cmath>
#include <set>

#include "src/rng.hpp"

namespace popcode {
namespace {

TEST(CounterRng, IsAPureFunctionOfSeedAndCounter) {
  const CounterRng a(42), b(42), c(43);
  EXPECT_EQ(a.bits(Stream::trial_noise, 5, 7), b.bits(Stream::trial_noise, 5, 7));
  EXPECT_NE(a.bits(Stream::trial_noise, 5, 7), c.bits(Stream::trial_noise, 5, 7));
  EXPECT_NE(a.bits(Stream::trial_noise, 5, 7), a.bits(Stream::trial_noise, 7, 5));
  EXPECT_NE(a.bits(Stream::trial_noise, 5, 7), a.bits(Stream::spont_noise, 5, 7));
  // Order of evaluation does not matter.
  const double x = a.normal(Stream::image, 1, 2, 3);
  (void)a.normal(Stream::image, 9, 9, 9);
  EXPECT_EQ(x, a.normal(Stream::image, 1, 2, 3));
}

TEST(CounterRng, UniformsAndNormalsHaveTheRightMoments) {
  const CounterRng rng(1);
  const int n = 200000;
  double su = 0, sn = 0, sn2 = 0, sn4 = 0;
  for (int i = 0; i < n; ++i) {
    const double u = rng.uniform(Stream::image, static_cast<std::uint32_t>(i));
    ASSERT_GT(u, 0.0);
    ASSERT_LT(u, 1.0);
    su += u;
    const double z = rng.normal(Stream::neuron, static_cast<std::uint32_t>(i));
    sn += z, sn2 += z * z, sn4 += z * z * z * z;
  }
  EXPECT_NEAR(su / n, 0.5, 0.005);
  EXPECT_NEAR(sn / n, 0.0, 0.01);
  EXPECT_NEAR(sn2 / n, 1.0, 0.02);
  EXPECT_NEAR(sn4 / n, 3.0, 0.1);
  std::set<std::uint64_t> seen;
  for (int i = 0; i < 1000; ++i) seen.insert(rng.below(10, Stream::order, static_cast<std::uint32_t>(i)));
  EXPECT_EQ(seen.size(), 10u);
}

}  // namespace
}  // namespace popcode
