// Stage `spectrum`: cross-validated PCA eigenspectrum, its power-law exponent and per-neuron reliability
// (solvers/cvpca.hpp, solvers/powerlaw.hpp, solvers/neuron_stats.hpp). Writes /spectrum.
#include <fmt/format.h>

#include <algorithm>
#include <cmath>

#include "solvers/cvpca.hpp"
#include "solvers/neuron_stats.hpp"
#include "solvers/powerlaw.hpp"
#include "src/log.hpp"
#include "src/stages/stage_util.hpp"

namespace popcode {

namespace {
std::string check_range(const OptionValue& v) {
  const std::string& s = std::get<std::string>(v);
  if (s == "auto") return {};
  try {
    parse_range(s);
  } catch (const Error& e) {
    return e.what();
  }
  return {};
}

double nan_mean(const std::vector<double>& v, const Context& ctx, std::int64_t* finite_out) {
  double sum = 0;
  std::int64_t finite = 0;
  for (double x : v)
    if (std::isfinite(x)) {
      sum += x;
      ++finite;
    }
  sum = ctx.sum(sum);
  finite = ctx.sum(finite);
  if (finite_out) *finite_out = finite;
  return finite > 0 ? sum / static_cast<double>(finite) : std::nan("");
}
}  // namespace

StageSpec spectrum_stage() {
  const CvpcaOptions d;
  StageSpec s;
  s.name = "spectrum";
  s.summary = "cross-validated PCA eigenspectrum (Stringer et al. 2019) and its power-law exponent";
  s.needs = {"preprocess"};
  s.options = {
      OptionSpec{"nshuff", OptionType::integer, std::int64_t{d.nshuff},
                 "passes with random repeat swaps, averaged (0: one pass, repeat 1 trains, deterministic)", {}, 0.0, {}, {}},
      OptionSpec{"components", OptionType::integer, d.components, "components to compute (0: all, min(stimuli, neurons))", {},
                 0.0, {}, {}},
      OptionSpec{"seed", OptionType::integer, std::int64_t{0}, "seed of the repeat swaps", {}, 0.0, {}, {}},
      OptionSpec{"solver", OptionType::text, std::string("auto"),
                 "eigensolver: lapack (dense, all components), slepc (Krylov-Schur on a shell operator) or auto",
                 {"auto", "lapack", "slepc"}, {}, {}, {}},
      OptionSpec{"tol", OptionType::real, d.tol, "SLEPc convergence tolerance", {}, 1e-16, 1e-2, {}},
      OptionSpec{"fit_range", OptionType::text, std::string("auto"),
                 "power-law fit range A:B (1-based PCs, inclusive); auto = 11:min(500, K-2)", {}, {}, {}, check_range},
  };
  s.run = [](StageRun& run) {
    const OptionValues& o = run.options;
    const PreprocessedData& p = *run.workspace.preprocessed;
    CvpcaOptions co;
    co.nshuff = static_cast<int>(o.integer("nshuff"));
    co.components = o.integer("components");
    co.seed = static_cast<std::uint64_t>(o.integer("seed"));
    co.solver = parse_eigen_solver(o.text("solver"));
    co.tol = o.real("tol");
    const CvpcaResult r = cross_validated_spectrum(run.ctx, p.repeats, co);
    // The fit works on replicated data, identically on every rank: its errors are every rank's errors.
    PowerLawFit fit;
    try {
      std::pair<std::int64_t, std::int64_t> range;
      if (o.text("fit_range") == "auto") {
        range = default_fit_range(std::min(r.stimuli, r.neurons));
        range.second = std::min(range.second, r.components);
      } else {
        range = parse_range(o.text("fit_range"));
      }
      fit = fit_power_law(r.signal, range.first, range.second);
    } catch (const Error& e) {
      throw_error(e.code(), e.what(), /*collective=*/true);
    }
    const NeuronStats ns = neuron_reliability(p.repeats);
    std::int64_t finite = 0;
    const double mean_fraction = nan_mean(ns.signal_fraction, run.ctx, &finite);
    log::info("spectrum: alpha = {:.4f} over PCs {}..{} (log-log r^2 {:.3f}); {} components from {} stimuli x {} neurons, "
              "{} pass{} ({}); mean signal-variance fraction {:.3f}",
              fit.alpha, fit.first, fit.last, fit.loglog_r2, r.components, r.stimuli, r.neurons, r.passes,
              r.passes == 1 ? "" : "es", eigen_solver_name(r.solver_used), mean_fraction);
    if (run.results == nullptr) return;
    StageWriter w = run.results->begin_stage(run.ctx, "spectrum");
    w.replicated("signal_variance", r.signal,
                 "cvPCA signal spectrum averaged over passes and normalised by the total cross-repeat variance (anchor: ss / sum(ss))");
    w.replicated("signal_variance_raw", r.signal_raw, "cvPCA signal spectrum averaged over passes, unnormalised");
    w.replicated("noise_variance", r.noise_raw, "cvPCA noise spectrum (train + test projected variance minus signal), averaged over passes");
    w.replicated("signal_variance_per_pass", r.signal_per_pass.values(), "unnormalised signal spectrum of each pass [pass, component]",
                 {r.passes, r.components});
    w.replicated("noise_variance_per_pass", r.noise_per_pass.values(), "noise spectrum of each pass [pass, component]",
                 {r.passes, r.components});
    w.replicated("total_variance_per_pass", r.total_per_pass, "trace of the cross-repeat covariance of each pass");
    w.replicated("swapped", r.swapped, "1 where a pass swapped the two repeats of a stimulus [pass, stimulus]", {r.passes, r.stimuli});
    w.replicated("image_ids", p.image_ids, "image id of each stimulus");
    w.replicated("fit_prediction", power_law_prediction(fit, r.components), "exp(intercept) n^-alpha for n = 1..components");
    w.scalar("alpha", fit.alpha, "power-law exponent of signal_variance over fit_range");
    const std::vector<std::int64_t> fr = {fit.first, fit.last};
    w.replicated("fit_range", fr, "first and last PC (1-based, inclusive) of the power-law fit");
    w.scalar("fit_intercept", fit.intercept, "intercept b of log ss = -alpha log n + b");
    w.scalar("fit_loglog_r2", fit.loglog_r2, "squared correlation of log n and log ss over the fit range");
    w.scalar("nshuff", static_cast<std::int64_t>(co.nshuff), "shuffle passes (0: one pass without swapping)");
    const auto n_local = static_cast<std::int64_t>(p.neuron_index.size());
    const auto per_neuron = [&](const char* name, const std::vector<double>& v, const std::string& what) {
      w.distributed<double>(name, p.neurons_total, p.neuron_offset, n_local, 1, v, what);
    };
    per_neuron("neurons/reliability", ns.reliability, "corr(repeat 1, repeat 2) over stimuli");
    per_neuron("neurons/noise_variance", ns.noise_variance, "var(repeat 1 - repeat 2) / 2");
    per_neuron("neurons/snr", ns.snr, "(var1 + var2 - 2 noise) / (2 noise)");
    per_neuron("neurons/signal_fraction", ns.signal_fraction, "cov(repeat 1, repeat 2) / mean(var1, var2)");
    w.distributed<std::int64_t>("neurons/index", p.neurons_total, p.neuron_offset, n_local, 1, p.neuron_index,
                                "recording index of each neuron");
    w.attribute("mean_signal_fraction", mean_fraction);
    w.attribute("neurons_with_finite_stats", finite);
    w.attribute("solver", std::string(eigen_solver_name(r.solver_used)));
    w.attribute("components", r.components);
    w.attribute("stimuli", r.stimuli);
    w.attribute("neurons", r.neurons);
    w.attribute("flops", r.flops);
    w.commit(run.identity, o.canonical());
  };
  return s;
}

}  // namespace popcode
