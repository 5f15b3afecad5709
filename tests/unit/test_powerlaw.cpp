#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>

#include "solvers/powerlaw.hpp"
#include "src/errors.hpp"

#ifdef POPCODE_HAVE_MATIO
#include <matio.h>
#endif

namespace popcode {
namespace {

TEST(PowerLaw, RecoversAnExactPowerLaw) {
  std::vector<double> ss(800);
  for (std::size_t n = 1; n <= ss.size(); ++n) ss[n - 1] = 3.5 * std::pow(static_cast<double>(n), -1.137);
  const PowerLawFit fit = fit_power_law(ss, 11, 500);
  EXPECT_NEAR(fit.alpha, 1.137, 1e-12);
  EXPECT_NEAR(fit.intercept, std::log(3.5), 1e-12);
  EXPECT_NEAR(fit.loglog_r2, 1.0, 1e-12);
  const auto pred = power_law_prediction(fit, 5);
  EXPECT_NEAR(pred[4], ss[4], 1e-12);
}

TEST(PowerLaw, UsesAbsoluteValuesAndOneOverNWeights) {
  // A spectrum whose two halves follow different laws: the 1/n weights favour the early components.
  std::vector<double> ss(100);
  for (std::size_t n = 1; n <= ss.size(); ++n) ss[n - 1] = (n <= 50 ? -1.0 : 1.0) * std::pow(double(n), n <= 50 ? -1.0 : -2.0);
  const PowerLawFit fit = fit_power_law(ss, 1, 100);
  // Direct weighted least squares for comparison.
  double sxx = 0, sx = 0, sw = 0, sxy = 0, sy = 0;
  for (int n = 1; n <= 100; ++n) {
    const double w = 1.0 / n, x = -std::log(double(n)), y = std::log(std::abs(ss[n - 1]));
    sxx += w * x * x, sx += w * x, sw += w, sxy += w * x * y, sy += w * y;
  }
  EXPECT_NEAR(fit.alpha, (sxy * sw - sx * sy) / (sxx * sw - sx * sx), 1e-12);
  // Unweighted least squares gives a different slope: the weights matter.
  double ux = 0, uy = 0, uxx = 0, uxy = 0;
  for (int n = 1; n <= 100; ++n) {
    const double x = -std::log(double(n)), y = std::log(std::abs(ss[n - 1]));
    ux += x, uy += y, uxx += x * x, uxy += x * y;
  }
  EXPECT_GT(std::abs(fit.alpha - (100 * uxy - ux * uy) / (100 * uxx - ux * ux)), 0.05);
}

TEST(PowerLaw, DefaultRangeFollowsTheAnchor) {
  EXPECT_EQ(default_fit_range(2800), (std::pair<std::int64_t, std::int64_t>{11, 500}));
  EXPECT_EQ(default_fit_range(256), (std::pair<std::int64_t, std::int64_t>{11, 254}));
  EXPECT_THROW(default_fit_range(13), InputError);
}

TEST(PowerLaw, RejectsBadRangesAndValues) {
  std::vector<double> ss(20, 1.0);
  EXPECT_THROW(fit_power_law(ss, 0, 10), InputError);
  EXPECT_THROW(fit_power_law(ss, 5, 21), InputError);
  EXPECT_THROW(fit_power_law(ss, 5, 5), InputError);
  ss[7] = 0.0;
  EXPECT_THROW(fit_power_law(ss, 1, 10), InputError);
  ss[7] = std::nan("");
  EXPECT_THROW(fit_power_law(ss, 1, 10), InputError);
  EXPECT_NO_THROW(fit_power_law(ss, 9, 12));
}

TEST(PowerLaw, ParsesRanges) {
  EXPECT_EQ(parse_range("11:500"), (std::pair<std::int64_t, std::int64_t>{11, 500}));
  for (const char* bad : {"", "11", "11-500", "0:5", "5:5", "a:b", "3:2", "1:2x"}) EXPECT_THROW(parse_range(bad), UsageError) << bad;
}

#ifdef POPCODE_HAVE_MATIO
// Known answers: alphaEphys of Stringer et al.'s ephys_eigsControls.mat, fitted over 10..min(500, nneur-2).
TEST(PowerLaw, ReproducesTheSixAlphaEphysKnownAnswers) {
  const std::string path = std::string(POPCODE_SHARED_DATA) + "/stringer2019/ephys_eigsControls.mat";
  if (!std::filesystem::exists(path)) GTEST_SKIP() << "known-answer file not present: " << path;
  mat_t* mat = Mat_Open(path.c_str(), MAT_ACC_RDONLY);
  ASSERT_NE(mat, nullptr) << path;
  matvar_t* spec = Mat_VarRead(mat, "specEphys");
  matvar_t* alpha = Mat_VarRead(mat, "alphaEphys");
  matvar_t* nneur = Mat_VarRead(mat, "nneurEphys");
  ASSERT_NE(spec, nullptr);
  ASSERT_NE(alpha, nullptr);
  ASSERT_NE(nneur, nullptr);
  ASSERT_EQ(spec->class_type, MAT_C_CELL);
  ASSERT_EQ(alpha->class_type, MAT_C_DOUBLE);
  ASSERT_EQ(spec->dims[0], 3u);
  ASSERT_EQ(spec->dims[1], 2u);
  const double* a = static_cast<const double*>(alpha->data);
  int checked = 0;
  for (int i = 0; i < 3; ++i) {
    double neurons = 0;
    if (nneur->class_type == MAT_C_UINT16) neurons = static_cast<const std::uint16_t*>(nneur->data)[i];
    else neurons = static_cast<const double*>(nneur->data)[i];
    for (int j = 0; j < 2; ++j) {
      matvar_t* cell = Mat_VarGetCell(spec, i + 3 * j);  // column-major cell index
      ASSERT_NE(cell, nullptr);
      const auto n = static_cast<std::size_t>(cell->nbytes / cell->data_size);
      std::vector<double> ss(static_cast<const double*>(cell->data), static_cast<const double*>(cell->data) + n);
      const auto last = std::min<std::int64_t>(500, static_cast<std::int64_t>(neurons) - 2);
      const PowerLawFit fit = fit_power_law(ss, 10, last);
      EXPECT_NEAR(fit.alpha, a[i + 3 * j], 1e-9) << "neurons " << neurons << " bin " << j;
      ++checked;
    }
  }
  EXPECT_EQ(checked, 6);
  // The published values themselves, as quoted in docs/SCIENCE.md.
  EXPECT_NEAR(a[0], 1.5977971512, 1e-10);
  EXPECT_NEAR(a[5], 1.2865475761, 1e-10);
  Mat_VarFree(spec);
  Mat_VarFree(alpha);
  Mat_VarFree(nneur);
  Mat_Close(mat);
}
#endif

}  // namespace
}  // namespace popcode
