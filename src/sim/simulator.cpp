#include "src/sim/simulator.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <vector>

#include "io/h5.hpp"
#include "io/recording_writer.hpp"
#include "partition/block_layout.hpp"
#include "solvers/dense.hpp"
#include "solvers/powerlaw.hpp"
#include "src/log.hpp"
#include "src/progress.hpp"
#include "src/sim/gabor.hpp"
#include "src/sim/images.hpp"
#include "src/version.hpp"

namespace popcode::sim {
namespace {

constexpr std::int64_t kTile = 256;
constexpr double kFieldOfView = 1000.0;  // um, both axes

// A seeded bijection of [0, n): a 4-round Feistel network on the smallest even-bit domain >= n, with
// cycle walking back into [0, n).
class NeuronPermutation {
 public:
  NeuronPermutation(const CounterRng& rng, std::uint64_t n) : rng_(rng), n_(n) {
    while ((std::uint64_t{1} << (2 * half_bits_)) < n) ++half_bits_;
    mask_ = (std::uint64_t{1} << half_bits_) - 1;
  }
  std::uint64_t operator()(std::uint64_t i) const {
    do {
      i = encrypt(i);
    } while (i >= n_);
    return i;
  }

 private:
  std::uint64_t encrypt(std::uint64_t x) const {
    std::uint64_t left = x >> half_bits_, right = x & mask_;
    for (std::uint32_t round = 0; round < 4; ++round) {
      const std::uint64_t f = rng_.bits(Stream::permutation, static_cast<std::uint32_t>(right), round)[0] & mask_;
      const std::uint64_t next = left ^ f;
      left = right;
      right = next;
    }
    return (left << half_bits_) | right;
  }
  const CounterRng& rng_;
  std::uint64_t n_;
  int half_bits_ = 1;
  std::uint64_t mask_ = 1;
};

// Everything about the stimuli, replicated on every rank.
struct Stimuli {
  std::vector<float> pixels;             // M x H x W, values in [0, 1]
  std::vector<std::int32_t> classes;     // per image
  Matrix x;                              // M x HW, pixels - 0.5
  Matrix phi;                            // M x K: c Z Lambda^1/2
  std::vector<double> lambda;            // K planted eigenvalues j^-alpha
  std::vector<double> loading_phase;     // K
  double c2 = 0;                         // c^2 = M / sum(lambda): mean power-law variance 1 per neuron
};

struct Presentations {
  std::vector<std::int32_t> ids;   // P
  std::vector<double> times;       // P
  Matrix leak;                     // P x d: leak a_k h_k(p)
};

struct NeuronParams {
  double x = 0, y = 0, baseline = 0, noise_sd = 0;
  std::int32_t plane = 0;
  GaborParams rf;
  double preferred = 0, kappa = 0, opposite = 0;  // von Mises direction tuning (gratings)
};

// Direction of grating m, radians in [0, 2 pi).
double grating_direction(const CounterRng& rng, std::int64_t m) {
  return 2 * M_PI * rng.uniform(Stream::grating, static_cast<std::uint32_t>(m));
}

// Unnormalised von Mises direction tuning f_i(theta) (simulator.hpp).
double direction_tuning(const NeuronParams& n, double theta) {
  return std::exp(n.kappa * (std::cos(theta - n.preferred) - 1)) + n.opposite * std::exp(n.kappa * (std::cos(theta - n.preferred - M_PI) - 1));
}

std::int64_t latent_limit(const SimulateOptions& o) {
  return std::max<std::int64_t>(0, std::min({o.images - 1, o.feature_bank, (o.neurons - 1) / 2}));
}

Stimuli make_stimuli(const CounterRng& rng, const SimulateOptions& o, std::int64_t* latent_dims) {
  Stimuli st;
  const std::int64_t m = o.images, hw = o.height * o.width;
  const ImageGeometry geometry{o.height, o.width, 150};
  st.pixels.resize(static_cast<std::size_t>(m * hw));
  st.classes.resize(static_cast<std::size_t>(m));
  st.x = Matrix(m, hw);
  for (std::int64_t i = 0; i < m; ++i) {
    st.classes[i] = image_class(rng, i, static_cast<int>(o.classes));
    std::span<float> img(st.pixels.data() + i * hw, static_cast<std::size_t>(hw));
    render_dead_leaves(rng, i, st.classes[i], static_cast<int>(o.classes), geometry, img);
    for (std::int64_t q = 0; q < hw; ++q) st.x(i, q) = static_cast<double>(img[q]) - 0.5;
  }
  std::int64_t k = o.latent_dims > 0 ? std::min(o.latent_dims, latent_limit(o)) : latent_limit(o);
  if (k > 0) {
    // Bank of rectified Gabor features: U = relu(X G_bank), centred over images.
    const std::int64_t kb = o.feature_bank;
    Matrix bank(hw, kb);
    for (std::int64_t j = 0; j < kb; ++j) {
      const auto id = static_cast<std::uint32_t>(j);
      const auto centre = rng.uniform2(Stream::feature_bank, id, 0);
      const GaborParams p = random_gabor(rng, Stream::feature_bank, id, centre[0] * static_cast<double>(o.width - 1),
                                         centre[1] * static_cast<double>(o.height - 1), o.height);
      render_gabor(p, o.height, o.width, bank.col(j));
    }
    Matrix u(m, kb);
    gemm(Trans::no, Trans::no, 1.0, st.x, bank, 0.0, u);  // U <- X G_bank
    for (std::int64_t j = 0; j < kb; ++j) {
      auto col = u.col(j);
      double mean = 0;
      for (double& v : col) mean += (v = std::max(v, 0.0));
      mean /= static_cast<double>(m);
      for (double& v : col) v -= mean;
    }
    Matrix z;
    const std::vector<double> sv = left_singular_vectors(u, z);  // U = Z S V^T
    const auto usable = std::count_if(sv.begin(), sv.end(), [&](double s) { return s > 1e-8 * sv.front(); });
    k = std::min<std::int64_t>(k, usable);
    st.lambda.resize(static_cast<std::size_t>(k));
    for (std::int64_t j = 0; j < k; ++j) st.lambda[j] = std::pow(static_cast<double>(j + 1), -o.alpha);
    st.c2 = static_cast<double>(m) / std::accumulate(st.lambda.begin(), st.lambda.end(), 0.0);
    st.phi = Matrix(m, k);
    for (std::int64_t j = 0; j < k; ++j) {
      const double scale = std::sqrt(st.c2 * st.lambda[j]);
      for (std::int64_t i = 0; i < m; ++i) st.phi(i, j) = scale * z(i, j);  // Phi <- c Z Lambda^1/2
    }
    st.loading_phase.resize(static_cast<std::size_t>(k));
    for (std::int64_t j = 0; j < k; ++j) st.loading_phase[j] = 2 * M_PI * rng.uniform(Stream::loading_phase, static_cast<std::uint32_t>(j));
  }
  *latent_dims = k;
  return st;
}

Presentations make_presentations(const CounterRng& rng, const SimulateOptions& o, const std::vector<double>& amp) {
  Presentations pr;
  const std::int64_t shown = o.images * o.repeats;
  const auto gray = static_cast<std::int64_t>(std::llround(o.gray_fraction * static_cast<double>(shown)));
  const std::int64_t p_total = shown + gray;
  std::vector<std::int32_t> sequence;
  sequence.reserve(static_cast<std::size_t>(shown));
  for (std::int64_t r = 0; r < o.repeats; ++r) {
    std::vector<std::int32_t> block(static_cast<std::size_t>(o.images));
    std::iota(block.begin(), block.end(), 0);
    for (std::int64_t i = o.images - 1; i > 0; --i) {  // Fisher-Yates
      const auto j = static_cast<std::int64_t>(rng.below(static_cast<std::uint64_t>(i + 1), Stream::order,
                                                         static_cast<std::uint32_t>(r), static_cast<std::uint32_t>(i)));
      std::swap(block[i], block[j]);
    }
    sequence.insert(sequence.end(), block.begin(), block.end());
  }
  pr.ids.assign(static_cast<std::size_t>(p_total), 0);
  std::vector<bool> is_gray(static_cast<std::size_t>(p_total), false);
  for (std::int64_t g = 0; g < gray; ++g) is_gray[static_cast<std::size_t>((2 * g + 1) * p_total / (2 * gray))] = true;
  std::size_t next = 0;
  for (std::int64_t p = 0; p < p_total; ++p) pr.ids[p] = is_gray[p] ? -1 : sequence[next++];
  pr.times.resize(static_cast<std::size_t>(p_total));
  for (std::int64_t p = 0; p < p_total; ++p) pr.times[p] = static_cast<double>(p);
  const std::int64_t d = o.spont_dims;
  pr.leak = Matrix(p_total, d);
  for (std::int64_t p = 0; p < p_total; ++p)
    for (std::int64_t k = 0; k < d; ++k)
      pr.leak(p, k) = o.leak * amp[k] * rng.normal2(Stream::leak_latent, static_cast<std::uint32_t>(p), static_cast<std::uint32_t>(k / 2))[k % 2];
  return pr;
}

NeuronParams neuron_params(const CounterRng& rng, std::int64_t i, const SimulateOptions& o) {
  const auto id = static_cast<std::uint32_t>(i);
  NeuronParams n;
  const auto pos = rng.uniform2(Stream::neuron, id, 0);
  const auto misc = rng.uniform2(Stream::neuron, id, 1);
  const auto scatter = rng.normal2(Stream::neuron, id, 2);
  const auto noise = rng.normal2(Stream::neuron, id, 3);
  n.x = kFieldOfView * pos[0];
  n.y = kFieldOfView * pos[1];
  n.plane = static_cast<std::int32_t>(std::min<double>(static_cast<double>(o.planes) - 1, std::floor(misc[0] * static_cast<double>(o.planes))));
  n.baseline = 1.0 + misc[1];
  n.noise_sd = o.noise * std::exp(0.25 * noise[0]);
  // Retinotopy: azimuth follows cortical x, elevation cortical y, with 1.5 px (at 36 rows) of scatter.
  const double scale = static_cast<double>(o.height) / 36.0;
  const double cx = std::clamp(n.x / kFieldOfView * static_cast<double>(o.width) + 1.5 * scale * scatter[0], 0.0,
                               static_cast<double>(o.width - 1));
  const double cy = std::clamp(n.y / kFieldOfView * static_cast<double>(o.height) + 1.5 * scale * scatter[1], 0.0,
                               static_cast<double>(o.height - 1));
  n.rf = random_gabor(rng, Stream::neuron_rf, id, cx, cy, o.height);
  const auto tuning = rng.uniform2(Stream::tuning, id, 0);
  n.preferred = 2 * M_PI * tuning[0];
  n.kappa = 1.0 + 3.0 * tuning[1];
  n.opposite = 0.2 + 0.8 * rng.uniform(Stream::tuning, id, 1);
  return n;
}

}  // namespace

void validate(const SimulateOptions& o) {
  std::vector<std::string> bad;
  auto need = [&](bool ok, const std::string& what) {
    if (!ok) bad.push_back(what);
  };
  need(o.stimulus == "images" || o.stimulus == "gratings", fmt::format("stimulus = \"{}\" must be images or gratings", o.stimulus));
  need(o.neurons >= 1, fmt::format("neurons = {} must be >= 1", o.neurons));
  need(o.neurons <= std::numeric_limits<std::uint32_t>::max(), "neurons must be < 2^32");
  need(o.images >= 2, fmt::format("images = {} must be >= 2", o.images));
  need(o.repeats >= 1, fmt::format("repeats = {} must be >= 1", o.repeats));
  need(o.height >= 4 && o.width >= 4, fmt::format("image size {} x {} must be at least 4 x 4", o.height, o.width));
  need(o.alpha > 0, fmt::format("alpha = {} must be > 0", o.alpha));
  need(o.latent_dims >= 0, fmt::format("latent_dims = {} must be >= 0 (0 = automatic)", o.latent_dims));
  need(o.feature_bank >= 1, fmt::format("feature_bank = {} must be >= 1", o.feature_bank));
  need(o.rf_fraction >= 0 && o.rf_fraction <= 1, fmt::format("rf_fraction = {} must be in [0, 1]", o.rf_fraction));
  need(o.rf_rank >= 0 && o.rf_rank <= 4096, fmt::format("rf_rank = {} must be in [0, 4096]", o.rf_rank));
  need(o.noise >= 0, fmt::format("noise = {} must be >= 0", o.noise));
  need(o.spont_dims >= 0, fmt::format("spont_dims = {} must be >= 0", o.spont_dims));
  need(o.spont_timepoints >= 0, fmt::format("spont_timepoints = {} must be >= 0", o.spont_timepoints));
  need(o.spont_scale >= 0 && o.leak >= 0, "spont_scale and leak must be >= 0");
  need(o.gray_fraction >= 0 && o.gray_fraction <= 1, fmt::format("gray_fraction = {} must be in [0, 1]", o.gray_fraction));
  need(o.classes >= 1, fmt::format("classes = {} must be >= 1", o.classes));
  need(o.planes >= 1, fmt::format("planes = {} must be >= 1", o.planes));
  need(o.plane_spacing >= 0, fmt::format("plane_spacing = {} must be >= 0", o.plane_spacing));
  if (!bad.empty()) {
    std::string msg = "invalid simulate options:";
    for (const auto& b : bad) msg += "\n  - " + b;
    throw UsageError(msg, true);
  }
}

SimulateSummary simulate(const Context& ctx, const SimulateOptions& o, const std::string& path) {
  validate(o);
  const CounterRng rng(o.seed);
  SimulateSummary summary;
  const bool gratings = o.stimulus == "gratings";
  const bool with_spectrum = o.truth_spectrum && !gratings;
  if (gratings)
    log::info("simulate: {} neurons, {} grating directions x {} repeats (von Mises direction tuning), seed {}", o.neurons,
              o.images, o.repeats, o.seed);
  else
    log::info("simulate: {} neurons, {} images x {} repeats ({} x {} px), alpha {}, seed {}", o.neurons, o.images,
              o.repeats, o.height, o.width, o.alpha, o.seed);
  std::int64_t k = 0;
  const Stimuli st = gratings ? Stimuli{} : make_stimuli(rng, o, &k);
  std::vector<double> direction;
  if (gratings)
    for (std::int64_t i = 0; i < o.images; ++i) direction.push_back(grating_direction(rng, i));
  summary.latent_dims = k;
  if (k == 0 && !gratings) log::warn_once("simulate: no power-law latent dimensions (needs >= 3 neurons and >= 2 images); signal is receptive-field only");
  const double a_pl = k > 0 ? std::sqrt(1.0 - o.rf_fraction) : 0.0;
  const double a_rf = k > 0 ? std::sqrt(o.rf_fraction) : 1.0;
  const std::int64_t d = o.spont_dims, t_spont = o.spont_timepoints, m = o.images, hw = gratings ? 0 : o.height * o.width;
  std::vector<double> amp(static_cast<std::size_t>(d));
  for (std::int64_t j = 0; j < d; ++j) amp[j] = o.spont_scale / std::sqrt(static_cast<double>(j + 1));
  const Presentations pr = make_presentations(rng, o, amp);
  const auto p_total = static_cast<std::int64_t>(pr.ids.size());
  summary.presentations = p_total;
  Matrix spont_latent(t_spont, d);  // a_k h'_k(t)
  for (std::int64_t t = 0; t < t_spont; ++t)
    for (std::int64_t j = 0; j < d; ++j)
      spont_latent(t, j) = amp[j] * rng.normal2(Stream::spont_latent, static_cast<std::uint32_t>(t), static_cast<std::uint32_t>(j / 2))[j % 2];
  const NeuronPermutation permutation(rng, static_cast<std::uint64_t>(o.neurons));

  RecordingLayout layout;
  layout.presentations = p_total;
  layout.neurons = o.neurons;
  layout.images = m;
  layout.spont_timepoints = t_spont;
  layout.image_height = gratings ? 0 : o.height;
  layout.image_width = gratings ? 0 : o.width;
  layout.positions = true;
  layout.source = gratings ? "popcode simulate (synthetic V1 population, drifting gratings, docs/simulator.md)"
                           : "popcode simulate (synthetic V1 population, docs/simulator.md)";
  layout.subject = "simulated";
  layout.session = fmt::format("seed {}", o.seed);
  layout.units = "arbitrary (signal s.d. about 1 per neuron)";
  RecordingWriter writer(ctx, path, layout);
  const h5::File& f = writer.file();
  const bool low_rank = !gratings && o.rf_rank > 0;
  if (gratings) h5::create_dataset<double>(f, "/truth/tuning", {o.neurons, 3});
  else if (low_rank) h5::create_dataset<double>(f, "/truth/rf_coefficients", {o.neurons, o.rf_rank});
  else h5::create_dataset<double>(f, "/truth/rf_params", {o.neurons, kGaborParamCount});
  // The shared filters of a low-rank receptive-field population (replicated: rf_rank x pixels).
  Matrix rf_basis(low_rank ? hw : 0, low_rank ? o.rf_rank : 0);
  for (std::int64_t b = 0; b < rf_basis.cols(); ++b) {
    const auto centre = rng.uniform2(Stream::rf_basis, static_cast<std::uint32_t>(b), 1);
    const GaborParams gp = random_gabor(rng, Stream::rf_basis, static_cast<std::uint32_t>(b),
                                        centre[0] * static_cast<double>(o.width - 1), centre[1] * static_cast<double>(o.height - 1),
                                        o.height);
    render_gabor(gp, o.height, o.width, rf_basis.col(b));
  }
  h5::create_dataset<double>(f, "/truth/noise_sd", {o.neurons});
  h5::create_dataset<double>(f, "/truth/baseline", {o.neurons});
  if (d > 0) h5::create_dataset<double>(f, "/truth/spont_loadings", {o.neurons, d});

  if (!gratings) {
    const Range image_rows = BlockLayout(m, ctx.size()).range(ctx.rank());
    writer.write_rows<float>("/images", image_rows,
                             std::span<const float>(st.pixels.data() + image_rows.begin * hw, static_cast<std::size_t>(image_rows.size() * hw)));
  }

  const Range mine = BlockLayout(o.neurons, ctx.size()).range(ctx.rank());
  const std::int64_t first_tile = mine.begin / kTile;
  const std::int64_t my_tiles = mine.empty() ? 0 : (mine.end - 1) / kTile - first_tile + 1;
  const std::int64_t rounds = ctx.max(my_tiles);
  Matrix signal_gram(with_spectrum ? m : 0, with_spectrum ? m : 0);
  Progress progress("simulate: neuron tiles on rank 0", static_cast<std::size_t>(my_tiles));
  for (std::int64_t round = 0; round < rounds; ++round) {
    Range own{0, 0};
    std::vector<float> resp_buf, spont_buf;
    std::vector<double> position, rf_params, noise_sd, baseline, loadings;
    std::vector<std::int32_t> plane;
    if (round < my_tiles) {
      const std::int64_t t0 = (first_tile + round) * kTile, t1 = std::min(o.neurons, t0 + kTile), nc = t1 - t0;
      own = {std::max(t0, mine.begin), std::min(t1, mine.end)};
      // Per-neuron parameters and the tile's loading matrices (always the whole tile).
      std::vector<NeuronParams> params;
      Matrix w(k, nc), gabors(hw, nc), spont_load(d, nc);
      for (std::int64_t c = 0; c < nc; ++c) {
        const std::int64_t i = t0 + c;
        params.push_back(neuron_params(rng, i, o));
        const std::uint64_t pi = permutation(static_cast<std::uint64_t>(i));
        for (std::int64_t j = 0; j < k; ++j) {
          const std::uint64_t phase_index = (static_cast<std::uint64_t>(j + 1) * pi) % static_cast<std::uint64_t>(o.neurons);
          w(j, c) = std::sqrt(2.0) * std::cos(2 * M_PI * static_cast<double>(phase_index) / static_cast<double>(o.neurons) + st.loading_phase[j]);
        }
        if (low_rank) {
          auto g = gabors.col(c);
          for (std::int64_t b = 0; b < o.rf_rank; ++b) {
            const double coef = rng.normal(Stream::rf_coefficients, static_cast<std::uint32_t>(i), static_cast<std::uint32_t>(b));
            const auto basis = rf_basis.col(b);
            for (std::int64_t q = 0; q < hw; ++q) g[q] += coef * basis[q];
          }
        } else if (!gratings) {
          render_gabor(params.back().rf, o.height, o.width, gabors.col(c));
        }
        for (std::int64_t j = 0; j < d; ++j)
          spont_load(j, c) = rng.normal2(Stream::spont_loading, static_cast<std::uint32_t>(i), static_cast<std::uint32_t>(j / 2))[j % 2];
      }
      Matrix signal(m, nc), rf(m, nc);
      if (k > 0) gemm(Trans::no, Trans::no, a_pl, st.phi, w, 0.0, signal);  // power-law part: Phi W
      if (gratings) {
        for (std::int64_t c = 0; c < nc; ++c)
          for (std::int64_t i = 0; i < m; ++i) rf(i, c) = direction_tuning(params[static_cast<std::size_t>(c)], direction[static_cast<std::size_t>(i)]);
      } else {
        gemm(Trans::no, Trans::no, 1.0, st.x, gabors, 0.0, rf);  // Gabor drive: X G
      }
      for (std::int64_t c = 0; c < nc; ++c) {  // rectify, standardise over stimuli, mix in
        auto col = rf.col(c);
        double mean = 0, var = 0;
        for (double& v : col) mean += (v = std::max(v, 0.0));
        mean /= static_cast<double>(m);
        for (double v : col) var += (v - mean) * (v - mean);
        const double sd = std::sqrt(var / static_cast<double>(m));
        const double scale = sd > 1e-12 ? a_rf / sd : 0.0;
        auto out = signal.col(c);
        for (std::int64_t i = 0; i < m; ++i) out[i] += scale * (col[i] - mean);
      }
      Matrix leak_term(p_total, nc), spont_shared(t_spont, nc);
      if (d > 0) {
        gemm(Trans::no, Trans::no, 1.0, pr.leak, spont_load, 0.0, leak_term);         // leak a h(p) L^T
        gemm(Trans::no, Trans::no, 1.0, spont_latent, spont_load, 0.0, spont_shared);  // a h'(t) L^T
      }
      const std::int64_t off = own.begin - t0, n_own = own.size();
      if (with_spectrum) {
        gemm_raw(Trans::no, Trans::yes, m, m, n_own, 1.0, signal.data() + off * m, m, signal.data() + off * m, m, 1.0,
                 signal_gram.data(), m);  // G_signal += S S^T over own neurons
      }
      resp_buf.resize(static_cast<std::size_t>(p_total * n_own));
      spont_buf.resize(static_cast<std::size_t>(t_spont * n_own));
      for (std::int64_t c = 0; c < n_own; ++c) {
        const std::int64_t tc = off + c, i = own.begin + c;
        const NeuronParams& np = params[static_cast<std::size_t>(tc)];
        for (std::int64_t p = 0; p < p_total; ++p) {
          const std::int32_t id = pr.ids[p];
          const double value = np.baseline + (id >= 0 ? signal(id, tc) : 0.0) + (d > 0 ? leak_term(p, tc) : 0.0) +
                               np.noise_sd * rng.normal(Stream::trial_noise, static_cast<std::uint32_t>(i), static_cast<std::uint32_t>(p));
          resp_buf[static_cast<std::size_t>(p * n_own + c)] = static_cast<float>(value);
        }
        for (std::int64_t t = 0; t < t_spont; ++t) {
          const double value = np.baseline + (d > 0 ? spont_shared(t, tc) : 0.0) +
                               np.noise_sd * rng.normal(Stream::spont_noise, static_cast<std::uint32_t>(i), static_cast<std::uint32_t>(t));
          spont_buf[static_cast<std::size_t>(t * n_own + c)] = static_cast<float>(value);
        }
        position.insert(position.end(), {np.x, np.y, o.plane_spacing * np.plane});
        plane.push_back(np.plane);
        if (gratings) rf_params.insert(rf_params.end(), {np.preferred, np.kappa, np.opposite});
        else if (low_rank)
          for (std::int64_t b = 0; b < o.rf_rank; ++b)
            rf_params.push_back(rng.normal(Stream::rf_coefficients, static_cast<std::uint32_t>(i), static_cast<std::uint32_t>(b)));
        else rf_params.insert(rf_params.end(), {np.rf.cx, np.rf.cy, np.rf.theta, np.rf.freq, np.rf.phase, np.rf.sigma, np.rf.aspect});
        noise_sd.push_back(np.noise_sd);
        baseline.push_back(np.baseline);
        for (std::int64_t j = 0; j < d; ++j) loadings.push_back(spont_load(j, tc));
      }
      progress.advance();
    }
    writer.write_columns("/responses", own, resp_buf);
    if (t_spont > 0) writer.write_columns("/spontaneous", own, spont_buf);
    writer.write_rows<double>("/neurons/position", own, position);
    writer.write_rows<std::int32_t>("/neurons/plane", own, plane);
    writer.write_rows<double>(gratings ? "/truth/tuning" : low_rank ? "/truth/rf_coefficients" : "/truth/rf_params", own, rf_params);
    writer.write_rows<double>("/truth/noise_sd", own, noise_sd);
    writer.write_rows<double>("/truth/baseline", own, baseline);
    if (d > 0) writer.write_rows<double>("/truth/spont_loadings", own, loadings);
  }
  progress.finish();

  // Realised signal spectrum: eigenvalues of the M x M signal Gram matrix summed over ranks.
  std::vector<double> spectrum;
  summary.alpha_signal = std::numeric_limits<double>::quiet_NaN();
  if (with_spectrum) {
    ctx.allreduce_sum(signal_gram.values());
    if (ctx.root()) {
      const std::int64_t comps = std::min(m, o.neurons);
      spectrum = symmetric_eigen(signal_gram, comps, nullptr);
      const double total = std::accumulate(spectrum.begin(), spectrum.end(), 0.0);
      for (double& v : spectrum) v /= total;
      if (comps >= 14) {
        const auto [a, b] = default_fit_range(comps);
        summary.alpha_signal = fit_power_law(spectrum, a, b).alpha;
      }
    }
    ctx.broadcast(std::span<double>(&summary.alpha_signal, 1));
  }

  RecordingMetadata meta;
  meta.stimulus_id = pr.ids;
  meta.presentation_time = pr.times;
  meta.class_label = st.classes;
  if (gratings) {
    meta.orientation.resize(pr.ids.size());
    for (std::size_t p = 0; p < pr.ids.size(); ++p)
      meta.orientation[p] = pr.ids[p] >= 0 ? direction[static_cast<std::size_t>(pr.ids[p])] : std::numeric_limits<double>::quiet_NaN();
  }
  for (std::int64_t c = 0; c < (gratings ? 0 : o.classes); ++c) {
    meta.class_names.push_back(fmt::format("leaves_{:03d}deg", static_cast<int>(std::lround(180.0 * static_cast<double>(c) / static_cast<double>(o.classes)))));
  }
  const double latent_scale = (1.0 - o.rf_fraction) * st.c2 * static_cast<double>(o.neurons);
  writer.finish(meta, [&](const h5::File& out) {
    h5::write_scalar(out, "/truth/alpha", o.alpha);
    h5::write_attribute(out, "/truth/alpha", "description", "planted power-law exponent of the latent signal eigenvalues");
    std::vector<double> latent(st.lambda.size());
    for (std::size_t j = 0; j < latent.size(); ++j) latent[j] = latent_scale * st.lambda[j];
    h5::write_all<double>(out, "/truth/latent_eigenvalues", {static_cast<std::int64_t>(latent.size())}, latent);
    h5::write_attribute(out, "/truth/latent_eigenvalues", "description",
                        "exact eigenvalues (over stimuli, summed over neurons) of the power-law part of the signal");
    if (!spectrum.empty()) {
      h5::write_all<double>(out, "/truth/signal_spectrum", {static_cast<std::int64_t>(spectrum.size())}, spectrum);
      h5::write_attribute(out, "/truth/signal_spectrum", "description",
                          "eigenspectrum of the noise-free signal (power-law and receptive-field parts), normalised to sum 1");
      h5::write_scalar(out, "/truth/alpha_signal", summary.alpha_signal);
      h5::write_attribute(out, "/truth/alpha_signal", "description",
                          "power-law exponent fitted to /truth/signal_spectrum over PCs 11..min(500, K-2)");
    }
    if (gratings) {
      h5::write_attribute(out, "/truth/tuning", "columns", std::vector<std::string>{"preferred_direction_rad", "kappa", "opposite_amplitude"});
      h5::write_attribute(out, "/truth/tuning", "description",
                          "von Mises direction tuning exp(kappa (cos(t - phi) - 1)) + beta exp(kappa (cos(t - phi - pi) - 1)) of each neuron");
    } else if (low_rank) {
      // rf_basis is (hw x rank) column-major, i.e. rank x height x width row-major.
      h5::write_all<double>(out, "/truth/rf_basis", {o.rf_rank, o.height, o.width}, rf_basis.values());
      h5::write_attribute(out, "/truth/rf_basis", "description",
                          "the shared Gabor filters of the low-rank receptive-field population [filter, row, column]");
      h5::write_attribute(out, "/truth/rf_coefficients", "description",
                          "each neuron's weights on /truth/rf_basis: its filter is sum_k c_ik basis_k");
    } else {
      h5::write_attribute(out, "/truth/rf_params", "columns", std::vector<std::string>{"cx_px", "cy_px", "theta_rad", "freq_cycles_per_px", "phase_rad", "sigma_px", "aspect"});
      h5::write_attribute(out, "/truth/rf_params", "description", "Gabor receptive field of each neuron (src/sim/gabor.hpp)");
    }
    h5::write_attribute(out, "/truth", "stimulus", o.stimulus);
    h5::write_attribute(out, "/truth/noise_sd", "description", "s.d. of each neuron's private trial noise");
    h5::write_attribute(out, "/truth/baseline", "description", "each neuron's mean activity");
    if (d > 0) h5::write_attribute(out, "/truth/spont_loadings", "description", "loadings of each neuron on the shared spontaneous dimensions (scaled by spont_scale / sqrt(k))");
    h5::write_attribute(out, "/truth", "rf_fraction", o.rf_fraction);
    h5::write_attribute(out, "/truth", "noise", o.noise);
    h5::write_attribute(out, "/truth", "latent_dims", k);
    h5::write_attribute(out, "/truth", "seed", static_cast<std::int64_t>(o.seed));
    h5::write_attribute(out, "/truth", "spont_dims", d);
    h5::write_attribute(out, "/truth", "spont_scale", o.spont_scale);
    h5::write_attribute(out, "/truth", "leak", o.leak);
    h5::write_attribute(out, "/truth", "retinotopy_px_per_um",
                        std::vector<double>{static_cast<double>(o.width) / kFieldOfView, static_cast<double>(o.height) / kFieldOfView});
    h5::write_attribute(out, "/truth", "generator", fmt::format("popcode {} ({})", version_string(), git_revision()));
  });
  log::info("simulate: wrote {} ({} presentations, {} latent dimensions{})", path, p_total, k,
            with_spectrum ? fmt::format(", realised signal alpha {:.3f}", summary.alpha_signal) : "");
  return summary;
}

}  // namespace popcode::sim
