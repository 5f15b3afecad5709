// The simulator's planted truth and structure, at the run's rank count.
#include <gtest/gtest.h>

#include <cmath>
#include <map>

#include "io/h5.hpp"
#include "io/recording.hpp"
#include "mpi/test_util.hpp"
#include "src/sim/simulator.hpp"

namespace popcode {
namespace {

sim::SimulateOptions small(double alpha, double rf) {
  sim::SimulateOptions o;
  o.neurons = 300;
  o.images = 120;
  o.repeats = 3;
  o.height = 12;
  o.width = 20;
  o.alpha = alpha;
  o.rf_fraction = rf;
  o.feature_bank = 200;
  o.spont_timepoints = 50;
  o.gray_fraction = 0.1;
  o.classes = 4;
  return o;
}

TEST(Simulator, PlantsAnExactPowerLawInThePopulationSpectrum) {
  const Context ctx(MPI_COMM_WORLD);
  testing::SharedTempDir dir(ctx);
  for (double alpha : {0.8, 1.5}) {
    const std::string path = dir.file("pl.h5");
    const auto summary = sim::simulate(ctx, small(alpha, 0.0), path);
    // 119 latent dimensions: min(images - 1, bank, (neurons - 1) / 2).
    EXPECT_EQ(summary.latent_dims, 119);
    // The realised spectrum of the noise-free signal is the planted one: the fit returns alpha exactly.
    EXPECT_NEAR(summary.alpha_signal, alpha, 1e-9);
    if (ctx.root()) {
      h5::File f = h5::File::open(path, h5::Access::read_only, ExitCode::internal);
      const auto lat = h5::read_all<double>(f, "/truth/latent_eigenvalues");
      const auto spec = h5::read_all<double>(f, "/truth/signal_spectrum");
      for (std::size_t j = 1; j < lat.size(); ++j) EXPECT_NEAR(lat[j] / lat[0], std::pow(double(j + 1), -alpha), 1e-12);
      double total = 0;
      for (double v : lat) total += v;
      for (std::size_t j = 0; j < lat.size(); ++j) EXPECT_NEAR(spec[j], lat[j] / total, 1e-10);
      EXPECT_EQ(h5::read_scalar(f, "/truth/alpha"), alpha);
    }
  }
}

TEST(Simulator, WritesAValidRecordingWithTheRequestedStructure) {
  const Context ctx(MPI_COMM_WORLD);
  testing::SharedTempDir dir(ctx);
  const std::string path = dir.file("s.h5");
  const auto o = small(1.0, 0.3);
  sim::simulate(ctx, o, path);
  const Recording rec = Recording::open(ctx, path);
  const RecordingInfo& info = rec.info();
  EXPECT_EQ(info.neurons, 300);
  EXPECT_EQ(info.images, 120);
  EXPECT_EQ(info.spont_timepoints, 50);
  EXPECT_EQ(info.presentations, 120 * 3 + 36);
  EXPECT_TRUE(info.has_images && info.has_classes && info.has_positions && info.has_planes && info.has_truth);
  std::map<std::int32_t, int> shown;
  for (auto id : info.stimulus_id) ++shown[id];
  EXPECT_EQ(shown[-1], 36);
  for (std::int32_t img = 0; img < 120; ++img) EXPECT_EQ(shown[img], 3);
  if (ctx.root()) {
    h5::File f = h5::File::open(path, h5::Access::read_only, ExitCode::internal);
    const auto pos = h5::read_all<double>(f, "/neurons/position");
    const auto plane = h5::read_all<std::int32_t>(f, "/neurons/plane");
    for (std::size_t i = 0; i < plane.size(); ++i) {
      EXPECT_GE(plane[i], 0);
      EXPECT_LT(plane[i], 11);
      EXPECT_EQ(pos[3 * i + 2], 35.0 * plane[i]);
    }
    const auto images = h5::read_all<float>(f, "/images");
    for (float v : images) {
      ASSERT_GE(v, 0.0f);
      ASSERT_LE(v, 1.0f);
    }
    // Retinotopy: RF azimuth follows cortical x.
    const auto rf = h5::read_all<double>(f, "/truth/rf_params");
    double sx = 0, sy = 0, sxy = 0, sxx = 0, syy = 0;
    for (std::size_t i = 0; i < plane.size(); ++i) {
      const double x = pos[3 * i], y = rf[7 * i];
      sx += x, sy += y, sxy += x * y, sxx += x * x, syy += y * y;
    }
    const double n = static_cast<double>(plane.size());
    const double corr = (sxy - sx * sy / n) / std::sqrt((sxx - sx * sx / n) * (syy - sy * sy / n));
    EXPECT_GT(corr, 0.9);
  }
}

// The orientation experiment: without noise or leak, every response is the neuron's baseline plus its von
// Mises direction tuning (from /truth/tuning) at the presentation's grating direction, standardised over the
// stimuli; gray screens have no angle.
TEST(Simulator, GratingsPlantVonMisesDirectionTuning) {
  const Context ctx(MPI_COMM_WORLD);
  testing::SharedTempDir dir(ctx);
  const std::string path = dir.file("g.h5");
  auto o = small(1.0, 0.3);
  o.stimulus = "gratings";
  o.noise = 0;
  o.leak = 0;
  sim::simulate(ctx, o, path);
  const Recording rec = Recording::open(ctx, path);
  const RecordingInfo& info = rec.info();
  EXPECT_TRUE(info.has_orientation);
  EXPECT_FALSE(info.has_images || info.has_classes);
  const std::vector<double> ori = rec.read_orientation(ctx);
  if (!ctx.root()) return;
  h5::File f = h5::File::open(path, h5::Access::read_only, ExitCode::internal);
  const auto resp = h5::read_all<float>(f, "/responses");  // presentations x neurons
  const auto tuning = h5::read_all<double>(f, "/truth/tuning");
  const auto base = h5::read_all<double>(f, "/truth/baseline");
  std::vector<double> direction(static_cast<std::size_t>(o.images), -1);
  for (std::size_t p = 0; p < ori.size(); ++p) {
    const std::int32_t id = info.stimulus_id[p];
    if (id < 0) {
      EXPECT_TRUE(std::isnan(ori[p]));
      continue;
    }
    ASSERT_GE(ori[p], 0.0);
    ASSERT_LT(ori[p], 2 * M_PI);
    if (direction[static_cast<std::size_t>(id)] >= 0) {
      EXPECT_EQ(direction[static_cast<std::size_t>(id)], ori[p]);  // repeats share it
    }
    direction[static_cast<std::size_t>(id)] = ori[p];
  }
  double worst = 0;
  for (std::int64_t i = 0; i < o.neurons; ++i) {
    const double phi = tuning[3 * i], kappa = tuning[3 * i + 1], beta = tuning[3 * i + 2];
    ASSERT_TRUE(kappa >= 1 && kappa <= 4 && beta >= 0.2 && beta <= 1);
    std::vector<double> fm(static_cast<std::size_t>(o.images));
    double mean = 0, var = 0;
    for (std::int64_t m = 0; m < o.images; ++m) {
      const double t = direction[static_cast<std::size_t>(m)];
      mean += fm[m] = std::exp(kappa * (std::cos(t - phi) - 1)) + beta * std::exp(kappa * (std::cos(t - phi - M_PI) - 1));
    }
    mean /= static_cast<double>(o.images);
    for (double v : fm) var += (v - mean) * (v - mean);
    const double sd = std::sqrt(var / static_cast<double>(o.images));
    for (std::size_t p = 0; p < ori.size(); ++p) {
      const std::int32_t id = info.stimulus_id[p];
      const double want = base[i] + (id >= 0 ? (fm[id] - mean) / sd : 0.0);
      worst = std::max(worst, std::abs(resp[p * o.neurons + i] - want));
    }
  }
  EXPECT_LT(worst, 1e-5);
}

TEST(Simulator, IsDeterministicBySeed) {
  const Context ctx(MPI_COMM_WORLD);
  testing::SharedTempDir dir(ctx);
  auto o = small(1.0, 0.3);
  sim::simulate(ctx, o, dir.file("a.h5"));
  sim::simulate(ctx, o, dir.file("b.h5"));
  o.seed = 2;
  sim::simulate(ctx, o, dir.file("c.h5"));
  if (ctx.root()) {
    const auto read = [&](const char* name) {
      h5::File f = h5::File::open(dir.file(name), h5::Access::read_only, ExitCode::internal);
      return h5::read_all<float>(f, "/responses");
    };
    EXPECT_EQ(read("a.h5"), read("b.h5"));
    EXPECT_NE(read("a.h5"), read("c.h5"));
  }
}

TEST(Simulator, RejectsInvalidOptions) {
  const Context ctx(MPI_COMM_WORLD);
  auto o = small(1.0, 0.3);
  o.images = 1;
  o.rf_fraction = 2;
  try {
    sim::validate(o);
    FAIL();
  } catch (const UsageError& e) {
    EXPECT_NE(std::string(e.what()).find("images = 1"), std::string::npos);
    EXPECT_NE(std::string(e.what()).find("rf_fraction = 2"), std::string::npos);
  }
}

}  // namespace
}  // namespace popcode
