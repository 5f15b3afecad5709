#include <gtest/gtest.h>

#include <cmath>

#include "solvers/neuron_stats.hpp"

namespace popcode {
namespace {

TEST(NeuronStats, MatchTheFormulas) {
  // Two neurons, S = 4 stimuli: columns 0..3 repeat 1, 4..7 repeat 2.
  const double a1[4] = {1, 2, 3, 6}, a2[4] = {2, 2, 4, 5};
  Matrix r(2, 8);
  for (int s = 0; s < 4; ++s) {
    r(0, s) = a1[s];
    r(0, 4 + s) = a2[s];
    r(1, s) = 3.0;  // constant neuron
    r(1, 4 + s) = 3.0;
  }
  const NeuronStats st = neuron_reliability(r);
  const double m1 = 3, m2 = 3.25;
  double v1 = 0, v2 = 0, c = 0, vd = 0;
  for (int s = 0; s < 4; ++s) {
    v1 += (a1[s] - m1) * (a1[s] - m1) / 4;
    v2 += (a2[s] - m2) * (a2[s] - m2) / 4;
    c += (a1[s] - m1) * (a2[s] - m2) / 4;
    const double d = (a1[s] - a2[s]) - (m1 - m2);
    vd += d * d / 4;
  }
  EXPECT_NEAR(st.reliability[0], c / std::sqrt(v1 * v2), 1e-14);
  EXPECT_NEAR(st.noise_variance[0], vd / 2, 1e-14);
  EXPECT_NEAR(st.snr[0], (v1 + v2 - vd) / vd, 1e-14);
  EXPECT_NEAR(st.signal_fraction[0], c / (0.5 * (v1 + v2)), 1e-14);
  EXPECT_TRUE(std::isnan(st.reliability[1]));
  EXPECT_TRUE(std::isnan(st.snr[1]));
  EXPECT_TRUE(std::isnan(st.signal_fraction[1]));
  EXPECT_EQ(st.noise_variance[1], 0.0);
}

}  // namespace
}  // namespace popcode
