// Stage `rf`: linear receptive fields (reduced-rank regression as the anchor's fitLowRankRFs/CanonCor2, ridge
// and the response-weighted average; solvers/receptive_fields.hpp), their centres, the retinotopic map of
// centre against cortical position, and, on simulated recordings, the agreement with the planted Gabor
// filters; with `gabor_fit`, the anchor's Gabor fits (fitGaborRFs.m: simple + complex model with c >= 0 over a
// grid of Gabors and centres; solvers/gabor_fit.hpp) into /rf/gabor. Writes /rf.
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <limits>

#include "io/h5.hpp"
#include "solvers/cross_repeat.hpp"
#include "solvers/gabor_fit.hpp"
#include "solvers/receptive_fields.hpp"
#include "src/log.hpp"
#include "src/sim/gabor.hpp"
#include "src/stages/stage_util.hpp"

namespace popcode {

namespace {

double median_of(std::vector<double> v) {
  std::erase_if(v, [](double x) { return !std::isfinite(x); });
  if (v.empty()) return std::nan("");
  std::sort(v.begin(), v.end());
  const std::size_t m = v.size() / 2;
  return v.size() % 2 ? v[m] : 0.5 * (v[m - 1] + v[m]);
}

double fraction_at_least(const std::vector<double>& v, double threshold) {
  std::size_t hit = 0, finite = 0;
  for (const double x : v)
    if (std::isfinite(x)) {
      ++finite;
      hit += x >= threshold;
    }
  return finite ? static_cast<double>(hit) / static_cast<double>(finite) : std::nan("");
}

std::string join_reals(const std::vector<double>& v) { return fmt::format("{}", fmt::join(v, ",")); }

}  // namespace

StageSpec rf_stage() {
  const RfOptions d;
  const GaborGrid gd;
  StageSpec s;
  s.name = "rf";
  s.summary = "receptive fields: reduced-rank regression (CanonCor2), ridge and STA; RF centres and retinotopy";
  s.needs = {"preprocess"};
  s.options = {
      OptionSpec{"rank", OptionType::integer, d.rank, "reduced-rank regression components kept (the anchor: 25)", {}, 1.0, {}, {}},
      OptionSpec{"response_pcs", OptionType::integer, d.response_pcs, "response principal components the RRR predicts (the anchor: 100)",
                 {}, 1.0, {}, {}},
      OptionSpec{"lambda", OptionType::real, d.lambda, "RRR ridge added to cov(images), relative to the mean pixel variance (the anchor: 0.005)", {},
                 0.0, {}, {}},
      OptionSpec{"ridge_lambda", OptionType::real, d.ridge_lambda, "pixel ridge regression's ridge, on the same scale", {}, 0.0, {},
                 {}},
      OptionSpec{"train_images", OptionType::integer, d.train_images, "images in the train set (0: the first half, as the anchor)", {},
                 0.0, {}, {}},
      OptionSpec{"centre_smooth", OptionType::real, d.centre_smooth, "s.d. in pixels of the smoothing that locates RF centres", {},
                 0.0, 100.0, {}},
      OptionSpec{"centre_map", OptionType::text, d.centre_map, "map whose smoothed energy locates RF centres", {"ridge", "rrr", "sta"},
                 {}, {}, {}},
      OptionSpec{"retinotopy_min_ve", OptionType::real, 0.05,
                 "neurons enter the retinotopic fit when the test variance explained of their centre map (ridge for sta) reaches this", {}, -1e9, 1.0, {}},
      OptionSpec{"store_maps", OptionType::boolean, true, "write every neuron's RF maps (RRR, ridge, STA: 3 x neurons x pixels)", {},
                 {}, {}, {}},
      OptionSpec{"gabor_fit", OptionType::boolean, false,
                 "also fit each neuron's best simple + complex Gabor over the grid below (fitGaborRFs; costly: a nightly job)",
                 {}, {}, {}, {}},
      OptionSpec{"gabor_frequencies", OptionType::text, join_reals(gd.frequencies), "Gabor spatial frequencies, cycles/px", {}, {},
                 {}, real_list_check("gabor_frequencies", "0.01,0.03,0.05")},
      OptionSpec{"gabor_sizes", OptionType::text, join_reals(gd.sizes), "Gabor envelope s.d. along the carrier, px", {}, {}, {},
                 real_list_check("gabor_sizes", "3,6,9,12")},
      OptionSpec{"gabor_ratios", OptionType::text, join_reals(gd.ratios), "envelope s.d. across / along the carrier", {}, {}, {},
                 real_list_check("gabor_ratios", "1,1.5,2,2.5")},
      OptionSpec{"gabor_orientations", OptionType::integer, gd.orientations, "orientations k pi / n, k = 0 .. n-1", {}, 1.0,
                 360.0, {}},
      OptionSpec{"gabor_phases", OptionType::integer, gd.phases, "phases k 2 pi / n, k = 0 .. n-1", {}, 1.0, 360.0, {}},
      OptionSpec{"gabor_row_offsets", OptionType::text, join_reals(gd.row_offsets),
                 "candidate centres: rows relative to the population's median scanned centre, px", {}, {}, {},
                 real_list_check("gabor_row_offsets", "-15,-10,-5,0,5,10,15")},
      OptionSpec{"gabor_col_offsets", OptionType::text, join_reals(gd.col_offsets),
                 "candidate centres: columns relative to the population's median scanned centre, px", {}, {}, {},
                 real_list_check("gabor_col_offsets", "-20,-10,0,10,20")},
  };
  s.run = [](StageRun& run) {
    const OptionValues& o = run.options;
    const PreprocessedData& p = *run.workspace.preprocessed;
    const Recording& rec = run.workspace.open_recording(run.ctx);
    const RecordingInfo& info = rec.info();
    run.ctx.agree(!info.has_images,
                  fmt::format("rf needs the stimulus images, but {} has no /images dataset (images x height x width); "
                              "import the image file with the recording (docs/import.md)",
                              info.path),
                  ExitCode::bad_input);
    const std::int64_t height = info.image_height, width = info.image_width, pixels = height * width;
    const auto images_used = static_cast<std::int64_t>(p.image_ids.size());
    const auto n = static_cast<std::int64_t>(p.neuron_index.size());

    // Replicated images: P x S, column j = image p.image_ids[j].
    Matrix images(pixels, images_used);
    {
      const std::vector<float> raw = rec.read_images(run.ctx, p.image_ids);
      std::copy(raw.begin(), raw.end(), images.data());
    }
    std::int64_t bad_pixels = 0;
    for (std::int64_t j = 0; j < images_used; ++j)
      for (const double v : images.col(j)) bad_pixels += !std::isfinite(v);
    run.ctx.agree(bad_pixels > 0,
                  fmt::format("{}: /images has {} NaN or Inf pixels in the {} images the responses use", info.path, bad_pixels,
                              images_used),
                  ExitCode::bad_input);
    Matrix raw_images;
    if (o.flag("gabor_fit")) raw_images = images;
    const std::int64_t blank = normalise_images(images);
    if (blank > 0) log::warn("rf: {} of {} images are uniform; they carry no pixel information", blank, images_used);

    RfOptions ro;
    ro.rank = o.integer("rank");
    ro.response_pcs = o.integer("response_pcs");
    ro.lambda = o.real("lambda");
    ro.ridge_lambda = o.real("ridge_lambda");
    ro.train_images = o.integer("train_images");
    ro.centre_smooth = o.real("centre_smooth");
    ro.centre_map = o.text("centre_map");
    log::info("rf: {} neurons, {} images of {} x {} px; reduced-rank regression of {} response PCs at rank {}",
              p.neurons_total, images_used, height, width, ro.response_pcs, ro.rank);
    const RfFit fit = fit_receptive_fields(run.ctx, p.repeats, images, height, width, ro);
    log::info("rf: normalised test variance explained: RRR rank {} {:.4f} (rank 1 {:.4f}), ridge {:.4f}", fit.rank,
              fit.rank_sweep.back(), fit.rank_sweep.front(), fit.ridge_normalized_ve);

    // Gabor fits (fitGaborRFs) on the raw images.
    GaborGrid grid;
    GaborFitResult gabor;
    if (o.flag("gabor_fit")) {
      grid.frequencies = parse_real_list(o.text("gabor_frequencies"), "gabor_frequencies", "0.01,0.03");
      grid.sizes = parse_real_list(o.text("gabor_sizes"), "gabor_sizes", "3,6");
      grid.ratios = parse_real_list(o.text("gabor_ratios"), "gabor_ratios", "1,1.5");
      grid.orientations = o.integer("gabor_orientations");
      grid.phases = o.integer("gabor_phases");
      grid.row_offsets = parse_real_list(o.text("gabor_row_offsets"), "gabor_row_offsets", "-15,0,15");
      grid.col_offsets = parse_real_list(o.text("gabor_col_offsets"), "gabor_col_offsets", "-20,0,20");
      log::info("rf: Gabor fits: {} Gabors at {} x {} candidate centres", grid.count(), grid.row_offsets.size(),
                grid.col_offsets.size());
      gabor = naming_recording(run, "rf",
                               [&] { return fit_gabors(run.ctx, p.repeats, raw_images, height, width, grid); });
      raw_images = Matrix();
      std::vector<double> ve = allgather_blocks(run.ctx, gabor.ve_test, MPI_DOUBLE);
      log::info("rf: Gabor fits: normalised test variance explained {:.4f}; per-neuron test variance explained median {:.4f}",
                gabor.normalized_ve, median_of(ve));
    }

    // Retinotopy: RF centre against cortical position.
    Retinotopy rt;
    if (info.has_positions) {
      const std::vector<double> pos = rec.read_neuron_rows(run.ctx, "/neurons/position", p.neuron_index, 3);
      std::vector<double> px(static_cast<std::size_t>(n)), py(static_cast<std::size_t>(n));
      std::vector<std::uint8_t> use(static_cast<std::size_t>(n));
      // Neurons whose centre map predicts the test images (STA has no prediction: the ridge's decides).
      const std::vector<double>& ve_for_centres = ro.centre_map == "rrr" ? fit.rrr_neuron_ve : fit.ridge_neuron_ve;
      for (std::int64_t i = 0; i < n; ++i) {
        px[static_cast<std::size_t>(i)] = pos[static_cast<std::size_t>(3 * i)];
        py[static_cast<std::size_t>(i)] = pos[static_cast<std::size_t>(3 * i + 1)];
        use[static_cast<std::size_t>(i)] = ve_for_centres[static_cast<std::size_t>(i)] >= o.real("retinotopy_min_ve");
      }
      rt = fit_retinotopy(run.ctx, fit.centre_x, fit.centre_y, px, py, use);
      log::info("rf: retinotopy over {} neurons: R^2 {:.3f} (azimuth), {:.3f} (elevation)", rt.neurons, rt.r2_x, rt.r2_y);
    }

    // Planted truth (simulated recordings): correlation of each map with the neuron's true filter, either its
    // own Gabor (/truth/rf_params) or its mix of the shared filters of a low-rank population
    // (/truth/rf_coefficients x /truth/rf_basis; no centre to compare there).
    bool truth = false;
    std::int64_t truth_rank = 0;
    std::vector<double> basis;
    if (info.has_truth) {
      const h5::File f = h5::File::open(info.path, h5::Access::read_only, ExitCode::bad_input);
      truth = h5::exists(f, "/truth/rf_params") && h5::shape_of(f, "/truth/rf_params").dims ==
                                                       std::vector<std::int64_t>{info.neurons, sim::kGaborParamCount};
      if (!truth && h5::exists(f, "/truth/rf_coefficients") && h5::exists(f, "/truth/rf_basis")) {
        const std::vector<std::int64_t> cd = h5::shape_of(f, "/truth/rf_coefficients").dims;
        const std::vector<std::int64_t> bd = h5::shape_of(f, "/truth/rf_basis").dims;
        if (cd.size() == 2 && cd[0] == info.neurons && bd == std::vector<std::int64_t>{cd[1], height, width}) {
          truth = true;
          truth_rank = cd[1];
          basis = h5::read_all<double>(f, "/truth/rf_basis");
        }
      }
    }
    std::vector<double> corr_rrr, corr_ridge, corr_sta, centre_error;
    if (truth) {
      const std::int64_t width_of_row = truth_rank > 0 ? truth_rank : sim::kGaborParamCount;
      const std::vector<double> params =
          rec.read_neuron_rows(run.ctx, truth_rank > 0 ? "/truth/rf_coefficients" : "/truth/rf_params", p.neuron_index, width_of_row);
      std::vector<double> g(static_cast<std::size_t>(pixels));
      for (std::int64_t i = 0; i < n; ++i) {
        const double* q = params.data() + i * width_of_row;
        if (truth_rank > 0) {
          std::fill(g.begin(), g.end(), 0.0);
          for (std::int64_t b = 0; b < truth_rank; ++b)
            for (std::int64_t px_i = 0; px_i < pixels; ++px_i) g[static_cast<std::size_t>(px_i)] += q[b] * basis[static_cast<std::size_t>(b * pixels + px_i)];
        } else {
          sim::GaborParams gp;
          gp.cx = q[0], gp.cy = q[1], gp.theta = q[2], gp.freq = q[3], gp.phase = q[4], gp.sigma = q[5], gp.aspect = q[6];
          sim::render_gabor(gp, height, width, g);
          centre_error.push_back(std::hypot(fit.centre_x[static_cast<std::size_t>(i)] - gp.cx, fit.centre_y[static_cast<std::size_t>(i)] - gp.cy));
        }
        corr_rrr.push_back(pearson(fit.rrr_rf.col(i), g));
        corr_ridge.push_back(pearson(fit.ridge_rf.col(i), g));
        corr_sta.push_back(pearson(fit.sta_rf.col(i), g));
      }
      if (truth_rank > 0) centre_error.assign(static_cast<std::size_t>(n), std::numeric_limits<double>::quiet_NaN());
    }
    std::vector<double> all_rrr, all_ridge, all_sta, all_err;
    if (truth) {
      all_rrr = allgather_blocks(run.ctx, corr_rrr, MPI_DOUBLE);
      all_ridge = allgather_blocks(run.ctx, corr_ridge, MPI_DOUBLE);
      all_sta = allgather_blocks(run.ctx, corr_sta, MPI_DOUBLE);
      all_err = allgather_blocks(run.ctx, centre_error, MPI_DOUBLE);
      log::info("rf: correlation with the planted filters (median): RRR {:.3f}, ridge {:.3f}, STA {:.3f}; centre error {:.2f} px",
                median_of(all_rrr), median_of(all_ridge), median_of(all_sta), median_of(all_err));
    }

    if (run.results == nullptr) return;
    StageWriter w = run.results->begin_stage(run.ctx, "rf");
    const std::int64_t total = p.neurons_total, off = p.neuron_offset;
    auto per_neuron = [&](const std::string& name, const std::vector<double>& v, const std::string& what) {
      w.distributed<double>(name, total, off, n, 1, v, what);
    };
    w.distributed<std::int64_t>("neuron_index", total, off, n, 1, p.neuron_index, "recording index of each neuron (row)");
    w.replicated("image_ids", p.image_ids, "image id of each stimulus; the first train_images are the train set");
    w.replicated("rrr/rank_sweep", fit.rank_sweep, "normalised test variance explained 1 - sum(res1 res2) / sum(r1 r2) at ranks 1..rank");
    w.replicated("rrr/component_r2", fit.component_r2, "CanonCor2 R2 of each component: s^2 / total variance of the train PC scores");
    w.scalar("rrr/normalized_variance_explained", fit.rank_sweep.back(), "normalised test variance explained at the kept rank");
    w.scalar("rrr/variance_explained", fit.rrr_variance_explained, "1 - mean squared test error / mean squared test response");
    per_neuron("rrr/neuron_variance_explained", fit.rrr_neuron_ve, "per neuron: 1 - mean((pred - y)^2) / mean(y^2) on test images");
    w.scalar("ridge/normalized_variance_explained", fit.ridge_normalized_ve, "normalised test variance explained of the full-rank ridge");
    w.scalar("ridge/variance_explained", fit.ridge_variance_explained, "1 - mean squared test error / mean squared test response");
    per_neuron("ridge/neuron_variance_explained", fit.ridge_neuron_ve, "per neuron, as for rrr");
    per_neuron("centre_x", fit.centre_x, "RF centre (centre_map's map), pixels from the left edge (column)");
    per_neuron("centre_y", fit.centre_y, "RF centre (centre_map's map), pixels from the top edge (row)");
    if (o.flag("store_maps")) {
      for (const auto& [name, m] : {std::pair<const char*, const Matrix&>{"rrr/rf", fit.rrr_rf}, {"ridge/rf", fit.ridge_rf},
                                    {"sta/rf", fit.sta_rf}})
        w.distributed<double>(name, total, off, n, pixels, m.values(), "RF map per neuron: neurons x (height * width), row-major pixels");
    }
    if (o.flag("gabor_fit")) {
      per_neuron("gabor/scan_row", gabor.scan_row, "estimateRFs centre: row (0-based) of the blob whose responses correlate best");
      per_neuron("gabor/scan_col", gabor.scan_col, "estimateRFs centre: column (0-based)");
      per_neuron("gabor/centre_row", gabor.centre_row, "centre of the kept Gabor, row (0-based px; NaN: no model)");
      per_neuron("gabor/centre_col", gabor.centre_col, "centre of the kept Gabor, column (0-based px)");
      std::vector<double> f, sz, ra, ori, ph, frac;
      for (std::size_t i = 0; i < gabor.index.size(); ++i) {
        const bool ok = gabor.index[i] >= 0;
        const GaborParameters gp = ok ? gabor_parameters(grid, gabor.index[i]) : GaborParameters{};
        const double nan = std::numeric_limits<double>::quiet_NaN();
        f.push_back(ok ? gp.frequency : nan);
        sz.push_back(ok ? gp.size : nan);
        ra.push_back(ok ? gp.ratio : nan);
        ori.push_back(ok ? gp.orientation : nan);
        ph.push_back(ok ? gp.phase : nan);
        frac.push_back(gabor.c_simple[i] / (gabor.c_simple[i] + gabor.c_complex[i]));
      }
      w.distributed<std::int64_t>("gabor/index", total, off, n, 1, gabor.index,
                                  "kept Gabor in the grid's MATLAB ndgrid order (frequency fastest, phase slowest; -1: none)");
      per_neuron("gabor/frequency", f, "spatial frequency of the kept Gabor, cycles/px");
      per_neuron("gabor/size", sz, "envelope s.d. along the carrier, px");
      per_neuron("gabor/ratio", ra, "envelope s.d. across / along the carrier");
      per_neuron("gabor/orientation", ori, "orientation, radians (the anchor's convention: x' along rows at 0)");
      per_neuron("gabor/phase", ph, "phase of the simple part, radians");
      per_neuron("gabor/c_simple", gabor.c_simple, "weight of the rectified simple-cell response (>= 0)");
      per_neuron("gabor/c_complex", gabor.c_complex, "weight of the complex-cell (energy) response (>= 0)");
      per_neuron("gabor/b_simple", gabor.b_simple, "train mean of the simple response (subtracted in predictions)");
      per_neuron("gabor/b_complex", gabor.b_complex, "train mean of the complex response");
      per_neuron("gabor/simple_fraction", frac, "c_simple / (c_simple + c_complex): how simple a cell is (the anchor's crat)");
      per_neuron("gabor/variance_explained_train", gabor.ve_train, "1 - mean((pred - r)^2) / mean(r^2) on the train images");
      per_neuron("gabor/variance_explained_test", gabor.ve_test, "the same on the test images");
      w.scalar("gabor/normalized_variance_explained", gabor.normalized_ve,
               "1 - sum(res1 res2) / sum(r1 r2) over neurons and test images, single repeats (the anchor's vvr)");
      w.replicated("gabor/grid_rows", gabor.grid_rows, "candidate centre rows (0-based px)");
      w.replicated("gabor/grid_cols", gabor.grid_cols, "candidate centre columns (0-based px)");
      w.replicated("gabor/frequencies", grid.frequencies, "the grid's frequencies");
      w.replicated("gabor/sizes", grid.sizes, "the grid's sizes");
      w.replicated("gabor/ratios", grid.ratios, "the grid's ratios");
      w.scalar("gabor/orientations", grid.orientations, "orientations k pi / n");
      w.scalar("gabor/phases", grid.phases, "phases k 2 pi / n");
      w.scalar("gabor/train_images", gabor.train, "the first floor(S/2) images");
    }
    if (info.has_positions) {
      w.replicated("retinotopy/coef_x", rt.coef_x, "centre_x = c0 + c1 x_um + c2 y_um (pixels, pixels per um)");
      w.replicated("retinotopy/coef_y", rt.coef_y, "centre_y = c0 + c1 x_um + c2 y_um (pixels, pixels per um)");
      w.scalar("retinotopy/r2_x", rt.r2_x, "fraction of centre_x variance explained by cortical position");
      w.scalar("retinotopy/r2_y", rt.r2_y, "fraction of centre_y variance explained by cortical position");
      w.scalar("retinotopy/neurons", rt.neurons, "neurons in the fit (variance explained >= retinotopy_min_ve)");
    }
    if (truth) {
      per_neuron("truth/corr_rrr", corr_rrr,
                 "correlation over pixels of the RRR map with the planted filter (the neuron's Gabor, or its mix of the "
                 "low-rank population's shared Gabors)");
      per_neuron("truth/corr_ridge", corr_ridge, "same for the ridge map");
      per_neuron("truth/corr_sta", corr_sta, "same for the STA map");
      per_neuron("truth/centre_error", centre_error,
                 "distance in pixels from the estimated centre to the planted centre (NaN for a low-rank population)");
      w.scalar("truth/planted_rank", truth_rank, "rank of the planted filter population (0: an independent Gabor per neuron)");
      for (const auto& [name, v] : {std::pair<const char*, const std::vector<double>&>{"rrr", all_rrr}, {"ridge", all_ridge},
                                    {"sta", all_sta}}) {
        w.scalar(fmt::format("truth/median_corr_{}", name), median_of(v), "median over neurons");
        w.scalar(fmt::format("truth/fraction_corr_{}_at_least_0.8", name), fraction_at_least(v, 0.8), "neurons with correlation >= 0.8");
      }
      w.scalar("truth/median_centre_error", median_of(all_err), "median over neurons, pixels");
    }
    w.attribute("image_height", height);
    w.attribute("image_width", width);
    w.attribute("train_images", fit.train);
    w.attribute("test_images", fit.test);
    w.attribute("rank", fit.rank);
    w.attribute("response_pcs", fit.response_pcs);
    w.attribute("rrr_mu", fit.mu);
    w.attribute("ridge_mu", fit.ridge_mu);
    w.commit(run.identity, o.canonical());
  };
  return s;
}

}  // namespace popcode
