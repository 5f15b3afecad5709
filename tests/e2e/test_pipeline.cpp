// End-to-end science checks of simulate -> preprocess -> spectrum: rank invariance, planted truth, the
// effect of spontaneous-PC removal, and equivalence with a NumPy re-implementation of the anchor.
#include "e2e/e2e_util.hpp"

namespace popcode::e2e {
namespace {

TEST(Pipeline, ResultsAgreeAtOneTwoAndThreeRanks) {
  TempDir dir;
  const std::string sim = "neurons = 700\nimages = 300\nspont_timepoints = 400\nseed = 4";
  for (int ranks : {1, 2, 3}) {
    const std::string name = "r" + std::to_string(ranks);
    const Outcome o = popcode(ranks, "run " + simulate_job(dir, name, sim, "nshuff = 3", ", \"distances\", \"decode-identity\"",
                                                           "[decode-identity]\ndraws = 2\nmax_subset_exponent = 6"));
    ASSERT_EQ(o.code, 0) << o.output;
  }
  // The simulator is bitwise identical at any rank count.
  for (int ranks : {2, 3}) {
    const std::string other = "r" + std::to_string(ranks);
    for (const char* group : {"/responses", "/spontaneous", "/stimulus_id", "/images", "/neurons", "/truth/rf_params"}) {
      expect_same_results(dir.file("r1_rec.h5"), dir.file(other + "_rec.h5"), group, 0.0);
    }
    // Preprocessing and cvPCA agree to rounding (the reductions are reassociated).
    for (const char* group : {"/preprocess", "/spectrum", "/truth", "/decode_identity", "/distances"}) {
      expect_same_results(dir.file("r1_res.h5"), dir.file(other + "_res.h5"), group, 1e-10);
    }
    EXPECT_NEAR(scalar(dir.file("r1_res.h5"), "/spectrum/alpha"), scalar(dir.file(other + "_res.h5"), "/spectrum/alpha"), 1e-10);
  }
}

TEST(Pipeline, RecoversThePlantedExponent) {
  TempDir dir;
  for (double alpha : {0.8, 1.0, 1.5}) {
    const std::string name = "a" + std::to_string(static_cast<int>(alpha * 10));
    const std::string sim = "neurons = 3000\nimages = 1200\nnoise = 0.4\nrf_fraction = 0.0\ntruth_spectrum = false\nalpha = " +
                            std::to_string(alpha);
    const Outcome o = popcode(2, "run " + simulate_job(dir, name, sim, "nshuff = 2"));
    ASSERT_EQ(o.code, 0) << o.output;
    const std::string res = dir.file(name + "_res.h5");
    const double planted = scalar(res, "/truth/alpha"), recovered = scalar(res, "/spectrum/alpha");
    EXPECT_EQ(planted, alpha);
    EXPECT_NEAR(recovered, planted, 0.05) << "planted " << planted;
    std::printf("planted alpha %.2f: recovered %.4f\n", planted, recovered);
  }
}

TEST(Pipeline, RecoversTheRealisedExponentWithReceptiveFields) {
  TempDir dir;
  const std::string sim = "neurons = 3000\nimages = 1200\nnoise = 0.4\nrf_fraction = 0.3";
  const Outcome o = popcode(2, "run " + simulate_job(dir, "rf", sim, "nshuff = 2"));
  ASSERT_EQ(o.code, 0) << o.output;
  const std::string res = dir.file("rf_res.h5");
  EXPECT_NEAR(scalar(res, "/spectrum/alpha"), scalar(res, "/truth/alpha_signal"), 0.05);
}

TEST(Pipeline, RemovingSpontaneousPcsMatters) {
  TempDir dir;
  const std::string rec = dir.file("rec.h5");
  ASSERT_EQ(popcode(2, "simulate --out " + rec + " --neurons 3000 --images 1200 --noise 0.4 --rf-fraction 0").code, 0);
  const auto run = [&](int pcs) {
    const std::string res = dir.file("res" + std::to_string(pcs) + ".h5");
    const Outcome o = popcode(2, "spectrum --in " + rec + " --out " + res + " --nshuff 2 --set preprocess.spont_pcs=" + std::to_string(pcs));
    EXPECT_EQ(o.code, 0) << o.output;
    return res;
  };
  const std::string with = run(32), without = run(0);
  const double a_with = scalar(with, "/spectrum/alpha"), a_without = scalar(without, "/spectrum/alpha");
  EXPECT_NEAR(a_with, 1.0, 0.05);
  EXPECT_GT(std::abs(a_without - 1.0), 0.1) << "the shared spontaneous component should bias the exponent";
  h5::File fw = open(with), fo = open(without);
  const double frac_with = h5::read_double_attribute(fw, "/spectrum", "mean_signal_fraction");
  const double frac_without = h5::read_double_attribute(fo, "/spectrum", "mean_signal_fraction");
  EXPECT_GT(frac_with, 2 * frac_without);
  EXPECT_LT(h5::read_all<double>(fw, "/spectrum/noise_variance")[0], 0.1 * h5::read_all<double>(fo, "/spectrum/noise_variance")[0]);
  std::printf("alpha with / without spontaneous-PC removal: %.4f / %.4f; signal fraction %.3f / %.3f\n", a_with, a_without,
              frac_with, frac_without);
}

TEST(Pipeline, EqualsANumpyReimplementationOfShuffledSpectrum) {
  const Outcome probe = shell("/usr/bin/python3 -c 'import numpy, h5py'");
  if (probe.code != 0) GTEST_SKIP() << "/usr/bin/python3 with numpy and h5py is not installed: " << probe.output;
  TempDir dir;
  const std::string rec = dir.file("rec.h5"), res = dir.file("res.h5");
  ASSERT_EQ(popcode(2, "simulate --out " + rec + " --neurons 900 --images 500 --spont-timepoints 600").code, 0);
  const Outcome o = popcode(3, "spectrum --in " + rec + " --out " + res + " --nshuff 0 --set preprocess.save_responses=true");
  ASSERT_EQ(o.code, 0) << o.output;
  const Outcome peer = shell("/usr/bin/python3 " + std::string(POPCODE_SOURCE_DIR) + "/tests/peer/shuffled_spectrum_numpy.py " +
                             rec + " " + res + " 32");
  std::printf("%s", peer.output.c_str());
  EXPECT_EQ(peer.code, 0) << peer.output;
}

}  // namespace
}  // namespace popcode::e2e
