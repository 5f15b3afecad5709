// Stage `dimension`: intrinsic dimension of the stimulus response cloud: the exact kNN graph
// (solvers/knn.hpp), geodesic-distance histograms (solvers/geodesic.hpp) and the Granata-Carnevale fit for
// each k of a sweep, with TwoNN, Levina-Bickel and the participation ratio beside them
// (solvers/intrinsic_dimension.hpp). Writes /dimension.
//
// Stage `dimension-spont`: the same analysis of spontaneous activity (the recording's /spontaneous, recorded
// during gray-screen periods; the seed article's m = 41, euclidean). One point per time point, over the neurons
// preprocess kept (GAD+ dropped). Each neuron is z-scored over time as preprocess step 3 does (ddof 0, s.d.
// + 1e-6; NaN counted and set to 0 first, preprocess's default policy; Inf refused), and nothing else: the
// spontaneous PCs that preprocess removes from the stimulus responses are the structure measured here.
// Writes /dimension_spont. Memory per rank: the spontaneous block, 8 n T bytes, then as `dimension`.
#include <fmt/format.h>

#include <cmath>
#include <limits>
#include <numeric>

#include "partition/block_layout.hpp"
#include "solvers/dense.hpp"

#include "solvers/geodesic.hpp"
#include "solvers/intrinsic_dimension.hpp"
#include "src/log.hpp"
#include "src/stages/stage_util.hpp"

namespace popcode {

namespace {

// The point cloud: one column per stimulus (the repeat mean, one repeat, or both repeats as 2S points).
// "both" is the repeats as preprocess holds them (knn_graph reads them in place); the others are new blocks.
Matrix point_cloud(const PreprocessedData& p, const std::string& which) {
  const std::int64_t n = p.repeats.rows(), s = p.repeats.cols() / 2;
  if (which == "both") return {};
  Matrix x(n, s);
  for (std::int64_t j = 0; j < s; ++j)
    for (std::int64_t i = 0; i < n; ++i)
      x(i, j) = which == "repeat1" ? p.repeats(i, j) : 0.5 * (p.repeats(i, j) + p.repeats(i, s + j));
  return x;
}

// The spontaneous cloud: /spontaneous of the neurons preprocess kept on this rank, z-scored per neuron.
Matrix spontaneous_cloud(const Context& ctx, const Recording& rec, const PreprocessedData& p, std::int64_t* nan_count) {
  const RecordingInfo& info = rec.info();
  if (info.spont_timepoints == 0)
    throw InputError(fmt::format("dimension-spont: {} has no /spontaneous dataset to measure", info.path), true);
  const Range mine = BlockLayout(info.neurons, ctx.size()).range(ctx.rank());
  ValueCounts counts;
  Matrix spont = rec.read_spontaneous(ctx, mine, &counts);
  if (counts.inf > 0)
    throw InputError(fmt::format("dimension-spont: {}: /spontaneous holds {} infinite values", info.path, counts.inf), true);
  std::vector<std::int64_t> rows, cols(static_cast<std::size_t>(spont.cols()));
  for (const std::int64_t g : p.neuron_index) {
    if (!mine.contains(g)) throw InternalError(fmt::format("dimension-spont: kept neuron {} is outside this rank's block", g));
    rows.push_back(g - mine.begin);
  }
  std::iota(cols.begin(), cols.end(), std::int64_t{0});
  spont.keep(rows, cols);
  for (double& v : spont.values())
    if (std::isnan(v)) v = 0;
  const RowMoments m = row_moments(spont);
  for (std::int64_t j = 0; j < spont.cols(); ++j)
    for (std::int64_t i = 0; i < spont.rows(); ++i) {
      const double sd = std::sqrt(m.ssd[static_cast<std::size_t>(i)] / static_cast<double>(spont.cols())) + 1e-6;
      spont(i, j) = (spont(i, j) - m.mean[static_cast<std::size_t>(i)]) / sd;
    }
  *nan_count = counts.nan;
  return spont;
}

StageSpec make_dimension_stage(bool spontaneous) {
  StageSpec s;
  s.name = spontaneous ? "dimension-spont" : "dimension";
  s.summary = spontaneous ? "intrinsic dimension of spontaneous activity (one point per time point): as `dimension`"
                          : "intrinsic dimension of the response cloud: kNN graph, geodesic histogram, Granata-Carnevale fit, "
                            "TwoNN, MLE";
  s.needs = {"preprocess"};
  s.options = {
      OptionSpec{"metric", OptionType::text, std::string(spontaneous ? "euclidean" : "cosine"),
                 spontaneous ? "kNN distance: euclidean (the seed article for gray-screen activity), cosine or correlation"
                             : "kNN distance: cosine (the seed article for images), euclidean (the anchor's default) or "
                               "correlation",
                 {"cosine", "euclidean", "correlation"}, {}, {}, {}},
      OptionSpec{"k", OptionType::text, std::string("4,9,13"), "neighbour counts of the geodesic graphs (the seed article's sweep)",
                 {}, {}, {}, positive_list_check("k", "4,9,13")},
      OptionSpec{"bins", OptionType::integer, std::int64_t{50}, "histogram bins (ID_fit.py: 50)", {}, 8.0, 100000.0, {}},
      OptionSpec{"dmin_max", OptionType::integer, std::int64_t{25}, "largest integer D scanned for Dmin (ID_fit.py: 25)", {},
                 2.0, 10000.0, {}},
      OptionSpec{"mle_k", OptionType::integer, std::int64_t{20}, "neighbours of the Levina-Bickel estimator", {}, 2.0, 10000.0, {}},
      OptionSpec{"products", OptionType::text, std::string("float32"),
                 "kNN products: float32 (single-precision pass with a proven error bound, candidates re-ranked in double: "
                 "the float64 graph at twice the BLAS rate) or float64 (double throughout; the participation ratio then "
                 "comes from double products too)",
                 {"float32", "float64"}, {}, {}, {}},
      OptionSpec{"tile", OptionType::integer, std::int64_t{512},
                 "points per side of a distance block (memory: 20 tile^2 bytes, two double buffers and one float)",
                 {}, 1.0, {}, {}},
      OptionSpec{"sources", OptionType::integer, std::int64_t{0},
                 "Dijkstra sources: 0 for every point (the exact histogram), else this many drawn at random, with "
                 "statistical errors", {}, 0.0, 1e15, [](const OptionValue& v) {
                   return std::get<std::int64_t>(v) == 1 ? std::string("sources = 1: sample at least 2 (or 0 for all)") : std::string();
                 }},
      OptionSpec{"source_groups", OptionType::integer, std::int64_t{10},
                 "sampled sources: groups whose separate fits give the batch-means error of D_fit", {}, 2.0, 1000.0, {}},
      OptionSpec{"seed", OptionType::integer, std::int64_t{0}, "seed of the sampled sources", {}, 0.0, 1e15, {}},
      OptionSpec{"store_mb", OptionType::integer, std::int64_t{1024},
                 "per-rank memory for holding pair distances between the two histogram passes (0: always recompute)", {}, 0.0,
                 {}, {}},
  };
  if (!spontaneous)
    s.options.insert(s.options.begin(),
                     OptionSpec{"points", OptionType::text, std::string("mean"),
                                "the cloud: mean (of the two repeats, one point per image), repeat1, or both (2 points per image)",
                                {"mean", "repeat1", "both"}, {}, {}, {}});
  const std::string group = spontaneous ? "dimension_spont" : "dimension";
  const std::string stage = s.name;
  s.run = [spontaneous, group, stage](StageRun& run) {
    const OptionValues& o = run.options;
    const PreprocessedData& p = *run.workspace.preprocessed;
    const std::vector<std::int64_t> ks = parse_positive_list(o.text("k"), "k", "4,9,13");
    const KnnMetric metric = parse_knn_metric(o.text("metric"));
    std::int64_t nan_zeroed = 0;
    const Matrix cloud = spontaneous ? spontaneous_cloud(run.ctx, run.workspace.open_recording(run.ctx), p, &nan_zeroed)
                                     : point_cloud(p, o.text("points"));
    const Matrix& x = !spontaneous && o.text("points") == "both" ? p.repeats : cloud;
    if (nan_zeroed > 0)
      log::warn_once("{}: {} NaN values in /spontaneous set to 0 (preprocess's default policy)", stage, nan_zeroed);
    const std::int64_t n_points = x.cols();
    const std::int64_t k_graph = *std::max_element(ks.begin(), ks.end());
    const std::int64_t mle_k = o.integer("mle_k");
    run.ctx.agree(std::max(k_graph, mle_k) >= n_points,
                  fmt::format("{}: k = {} (largest of k = {} and mle_k = {}) needs more points than that; the cloud "
                              "of {} has {} points",
                              stage, std::max(k_graph, mle_k), o.text("k"), mle_k, run.workspace.recording_path, n_points),
                  ExitCode::bad_input);
    const std::int64_t k_all = std::max({k_graph, mle_k, std::int64_t{2}});
    ParticipationRatio pr(n_points);
    const KnnGraph knn = knn_graph(run.ctx, x, k_all, metric, o.integer("tile"), pr.visitor(),
                                   parse_knn_products(o.text("products")));
    const double participation = pr.finish(run.ctx);
    if (knn.rechecked_pairs > 0)
      log::info("{}: float32 kNN products: {} candidate pairs ({:.1f} per point, k = {}) re-ranked in double", stage,
                knn.rechecked_pairs, 2.0 * static_cast<double>(knn.rechecked_pairs) / static_cast<double>(n_points), k_all);
    const TwoNnEstimate twonn = two_nn(knn);
    const MleEstimate mle = levina_bickel(knn, mle_k);
    log::info("{}: {} points x {} neurons ({}); TwoNN {:.2f} (MLE form {:.2f}), Levina-Bickel (k = {}) {:.2f}, "
              "participation ratio {:.2f}",
              stage, n_points, p.neurons_total, knn_metric_name(metric), twonn.d_fit, twonn.d_mle, mle.k, mle.d, participation);

    struct PerK {
      std::int64_t k;
      GeodesicHistogram hist;
      bool histogram = false;  // the histogram was made (a fit can still be refused)
      GcFit fit;
      std::string status = "ok";
      double r_nn_max = 0;
      std::vector<double> group_d_fit;  // sampled sources: D_fit of each source group
      double d_fit_se = std::numeric_limits<double>::quiet_NaN();
    };
    std::vector<PerK> results;
    for (std::int64_t k : ks) {
      PerK r{k, {}, false, {}, "ok", 0, {}, std::numeric_limits<double>::quiet_NaN()};
      const UndirectedGraph graph = undirected_knn_graph(knn, k);
      r.r_nn_max = graph.max_edge;
      try {
        GeodesicSampling sampling;
        sampling.sources = o.integer("sources");
        sampling.seed = static_cast<std::uint64_t>(o.integer("seed"));
        sampling.groups = static_cast<int>(o.integer("source_groups"));
        r.hist = geodesic_histogram(run.ctx, graph, static_cast<int>(o.integer("bins")),
                                    o.integer("store_mb") * (std::int64_t{1} << 20), sampling);
        r.histogram = true;
        r.fit = granata_carnevale_fit(r.hist.counts, r.hist.edges, r.hist.mean, r.hist.std, graph.max_edge,
                                      static_cast<int>(o.integer("dmin_max")));
        if (r.hist.sampled) {
          // Batch means: the fit on each source group's histogram; the error of the whole sample's D_fit is
          // their s.d. / sqrt(groups).
          const auto nb = r.hist.counts.size();
          double s1 = 0, s2 = 0;
          int ok = 0;
          for (std::size_t g = 0; g < r.hist.group_mean.size(); ++g) {
            const std::vector<std::int64_t> counts(r.hist.group_counts.begin() + static_cast<std::ptrdiff_t>(g * nb),
                                                   r.hist.group_counts.begin() + static_cast<std::ptrdiff_t>((g + 1) * nb));
            double d = std::numeric_limits<double>::quiet_NaN();
            try {
              d = granata_carnevale_fit(counts, r.hist.edges, r.hist.group_mean[g], r.hist.group_std[g], graph.max_edge,
                                        static_cast<int>(o.integer("dmin_max")))
                      .d_fit;
            } catch (const InputError&) {
            }
            r.group_d_fit.push_back(d);
            if (std::isfinite(d)) {
              s1 += d;
              s2 += d * d;
              ++ok;
            }
          }
          if (ok >= 2)
            r.d_fit_se = std::sqrt(std::max(0.0, (s2 - s1 * s1 / ok) / (ok - 1)) / ok);
          log::info("{}: k = {:>3}: {} of {} points as Dijkstra sources; D_fit {:.2f} +- {:.2f} (batch means of {} "
                    "source groups)",
                    stage, k, r.hist.sources, r.hist.points_kept, r.fit.d_fit, r.d_fit_se, ok);
        }
        log::info("{}: k = {:>3}: Granata-Carnevale Dfit {:.2f}, Dmin {} (r_max {:.4g}, fit on ({:.4g}, {:.4g}]); {} "
                  "of {} points connected, {} pairs{}",
                  stage, k, r.fit.d_fit, r.fit.d_min, r.fit.r_max, r.fit.r_min, r.fit.r_fit_end, r.hist.points_kept, n_points,
                  r.hist.pairs, r.fit.warnings.empty() ? "" : "; " + fmt::format("{}", fmt::join(r.fit.warnings, "; ")));
      } catch (const InputError& e) {
        // Replicated inputs: every rank fails alike. The k is reported as failed, the others go on.
        r.status = e.what();
        log::warn_once("{}: k = {}: {}", stage, k, e.what());
      }
      results.push_back(std::move(r));
    }

    if (run.results == nullptr) return;
    StageWriter w = run.results->begin_stage(run.ctx, group);
    w.replicated("knn/index", knn.index, "neighbours of each point, nearest first [point, rank] (0-based point index)",
                 {n_points, knn.k});
    w.replicated("knn/distance", knn.distance, "distance to each neighbour [point, rank]", {n_points, knn.k});
    w.scalar("two_nn/dimension", twonn.d_fit, "TwoNN: slope of -log(1 - F(mu)) on log mu through 0, smallest 90%");
    w.scalar("two_nn/dimension_mle", twonn.d_mle, "TwoNN maximum-likelihood form (N - 1) / sum log mu");
    w.scalar("two_nn/points_dropped", twonn.points_dropped, "points with a zero nearest-neighbour distance");
    w.scalar("mle/dimension", mle.d, "Levina-Bickel MLE, harmonic mean over points");
    w.scalar("mle/k", mle.k, "neighbours of the Levina-Bickel estimator");
    w.scalar("mle/points_dropped", mle.points_dropped, "points whose estimate is undefined (zero or repeated distances)");
    w.scalar("participation_ratio", participation,
             "(sum lambda)^2 / sum lambda^2 of the covariance of the points (from the kNN pass's products: under "
             "products = float32 within about 1e-6 relative of the double value)");
    w.scalar("knn/rechecked_pairs", knn.rechecked_pairs,
             "products = float32: candidate pairs whose products were formed again in double (0 under float64)");
    w.attribute("products", std::string(o.text("products")));
    w.replicated("k", ks, "neighbour counts of the geodesic graphs");
    const double nan = std::numeric_limits<double>::quiet_NaN();
    std::vector<double> d_fit, d_min;
    for (const PerK& r : results) {
      d_fit.push_back(r.status == "ok" ? r.fit.d_fit : nan);
      d_min.push_back(r.status == "ok" ? static_cast<double>(r.fit.d_min) : nan);
      const std::string g = fmt::format("k{}/", r.k);
      w.scalar(g + "r_nn_max", r.r_nn_max, "largest distance among the graph's kNN edges");
      w.attribute("k" + std::to_string(r.k) + "_status", r.status);
      if (!r.histogram) continue;
      const auto& h = r.hist;
      w.replicated(g + "histogram/counts", h.counts, "pairs of connected points per geodesic-distance bin (np.histogram)");
      w.replicated(g + "histogram/edges", h.edges, "bin edges (np.histogram)");
      w.scalar(g + "histogram/mean", h.mean, "mean geodesic distance");
      w.scalar(g + "histogram/std", h.std, "population s.d. of the geodesic distances");
      w.scalar(g + "histogram/pairs", h.pairs, "pairs histogrammed");
      w.scalar(g + "histogram/zero_pairs", h.zero_pairs, "pairs at distance 0 (left out, as the anchor)");
      w.scalar(g + "points_kept", h.points_kept, "points connected to more than half of all points");
      w.replicated(g + "kept", h.kept, "1 for each point kept by the connectivity filter");
      w.attribute("k" + std::to_string(r.k) + "_histogram_passes", std::int64_t{h.stored ? 1 : 2});
      w.scalar(g + "sources", h.sources, "Dijkstra sources (every kept point: the exact histogram)");
      if (h.sampled) {
        w.scalar(g + "histogram/scale", h.scale,
                 "sampled sources: counts are ordered pairs (source, other kept point); scale x counts estimates the counts "
                 "of all unordered pairs");
        w.replicated(g + "histogram/count_se", h.count_se, "standard error of scale x counts in each bin");
        w.replicated(g + "histogram/group_counts", h.group_counts, "counts of each source group [group, bin]",
                     {static_cast<std::int64_t>(h.group_mean.size()), static_cast<std::int64_t>(h.counts.size())});
      }
      if (r.status != "ok") continue;  // the histogram, for a look at why the fit was refused
      const GcFit& f = r.fit;
      w.scalar(g + "d_fit", f.d_fit, "Granata-Carnevale dimension: hypersphere fit of the left flank");
      w.scalar(g + "d_min", f.d_min, "integer D whose hypersphere curve has the smallest RMSD");
      w.scalar(g + "ratio", f.ratio, "R of the Gaussian model");
      w.scalar(g + "r_max", f.r_max, "refined peak of the distance distribution");
      w.scalar(g + "sigma", f.sigma, "refined width of the peak");
      w.replicated(g + "fit_window", std::vector<double>{f.r_min, f.r_fit_end}, "fit on r_min < r <= r_end");
      w.replicated(g + "rmsd", f.rmsd, "RMSD of the hypersphere model for D = 1..dmin_max");
      w.replicated(g + "fit/x", f.x, "r / r_max of the bins in the fit window");
      w.replicated(g + "fit/log_p", f.y, "log p(r) / p(r_max) of the data");
      w.replicated(g + "fit/gaussian", f.gaussian, "the Gaussian model's log p (validation curve)");
      w.replicated(g + "fit/hypersphere_dfit", f.hypersphere_fit, "the D_fit hypersphere's log p (validation curve)");
      w.replicated(g + "fit/hypersphere_dmin", f.hypersphere_dmin, "the D_min hypersphere's log p (validation curve)");
      if (h.sampled) {
        w.replicated(g + "group_d_fit", r.group_d_fit, "D_fit of each source group's histogram (NaN: its fit failed)");
        w.scalar(g + "d_fit_se", r.d_fit_se, "standard error of d_fit: s.d. of the group fits / sqrt(groups)");
      }
      if (!f.warnings.empty())
        w.attribute("k" + std::to_string(r.k) + "_warnings", fmt::format("{}", fmt::join(f.warnings, "; ")));
    }
    w.replicated("d_fit", d_fit, "Granata-Carnevale D_fit for each k (NaN: that k failed, see the k<k>_status attribute)");
    w.replicated("d_min", d_min, "Granata-Carnevale D_min for each k (NaN: failed)");
    w.attribute("metric", std::string(knn_metric_name(metric)));
    w.attribute("points", std::string(spontaneous ? "spontaneous" : o.text("points")));
    if (spontaneous) w.attribute("nan_zeroed", nan_zeroed);
    w.attribute("point_count", n_points);
    w.attribute("neurons", p.neurons_total);
    w.commit(run.identity, o.canonical());
  };
  return s;
}

}  // namespace

StageSpec dimension_stage() { return make_dimension_stage(false); }
StageSpec dimension_spont_stage() { return make_dimension_stage(true); }

}  // namespace popcode
