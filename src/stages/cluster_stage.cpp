// Stage `cluster`: k-means on standardised stimulus responses (solvers/kmeans.hpp) with the seed article's
// evaluation (how often the two repeats of an image share a cluster) and the adjusted Rand index against
// the recording's image classes when it has them. Writes /cluster.
//
// With cocluster_k >= 2, also spectral co-clustering (Dhillon; solvers/spectral_cocluster.hpp) of images and
// neurons on the repeat-mean responses, each neuron shifted by its minimum so the matrix is nonnegative.
//
// With bicluster_k >= 2, also spectral biclustering (Kluger; solvers/spectral_bicluster.hpp) of the repeat-mean
// responses into a checkerboard of images x neurons, and then the k-means above once more on the neurons of
// each neuron cluster alone (same points, k and initialisations): does a subpopulation picked by its image
// preferences separate the images better than all neurons do? Each subset's repeat agreement and ARI are
// reported beside the all-neuron values.
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <limits>

#include "solvers/dense.hpp"
#include "solvers/kmeans.hpp"
#include "solvers/spectral_bicluster.hpp"
#include "solvers/spectral_cocluster.hpp"
#include "src/log.hpp"
#include "src/stages/stage_util.hpp"

namespace popcode {

namespace {

double repeat_agreement(const std::vector<std::int32_t>& labels, std::int64_t images) {
  std::int64_t agree = 0;
  for (std::int64_t j = 0; j < images; ++j)
    agree += labels[static_cast<std::size_t>(j)] == labels[static_cast<std::size_t>(images + j)] ? 1 : 0;
  return static_cast<double>(agree) / static_cast<double>(images);
}

// The mean of each image's two repeats (n_local x images) from the [repeat 1 | repeat 2] block.
Matrix repeat_means(const Matrix& repeats, std::int64_t images) {
  Matrix m(repeats.rows(), images);
  for (std::int64_t j = 0; j < images; ++j)
    for (std::int64_t i = 0; i < m.rows(); ++i) m(i, j) = 0.5 * (repeats(i, j) + repeats(i, images + j));
  return m;
}

}  // namespace

StageSpec cluster_stage() {
  const KmeansOptions d;
  const BiclusterOptions bd;
  StageSpec s;
  s.name = "cluster";
  s.summary = "k-means of stimulus responses (k-means++, distributed Lloyd): repeat agreement and ARI against classes";
  s.needs = {"preprocess"};
  s.options = {
      OptionSpec{"k", OptionType::integer, d.k, "clusters (the seed article: 8)", {}, 1.0, {}, {}},
      OptionSpec{"points", OptionType::text, std::string("both"),
                 "both (each image's two repeats as two points: needed for the repeat agreement) or mean", {"both", "mean"}, {},
                 {}, {}},
      OptionSpec{"standardize", OptionType::boolean, true, "z-score each neuron over the points first", {}, {}, {}, {}},
      OptionSpec{"n_init", OptionType::integer, std::int64_t{d.n_init}, "k-means++ initialisations; the lowest inertia is kept", {},
                 1.0, 1000.0, {}},
      OptionSpec{"max_iter", OptionType::integer, std::int64_t{d.max_iter}, "Lloyd iterations at most", {}, 1.0, {}, {}},
      OptionSpec{"tol", OptionType::real, d.tol, "stop when the squared centre shift is below tol x mean variance", {}, 0.0, 1.0,
                 {}},
      OptionSpec{"seed", OptionType::integer, std::int64_t{0}, "seed of the k-means++ draws", {}, 0.0, {}, {}},
      OptionSpec{"bounds", OptionType::boolean, true,
                 "skip re-reading points whose triangle-inequality bounds fix their label (Elkan; same labels)", {}, {}, {},
                 {}},
      OptionSpec{"cocluster_k", OptionType::integer, std::int64_t{0},
                 "spectral co-clusters of images and neurons (Dhillon; 0: none)", {}, 0.0, {}, {}},
      OptionSpec{"cocluster_n_init", OptionType::integer, std::int64_t{10},
                 "k-means++ initialisations of the co-clustering's k-means (sklearn: 10)", {}, 1.0, 1000.0, {}},
      OptionSpec{"cocluster_svd", OptionType::text, std::string("slepc"), "singular vectors by slepc or gram",
                 {"slepc", "gram"}, {}, {}, {}},
      OptionSpec{"bicluster_k", OptionType::integer, std::int64_t{0},
                 "image clusters of the spectral biclustering (Kluger; 0: none)", {}, 0.0, {}, {}},
      OptionSpec{"bicluster_neuron_k", OptionType::integer, std::int64_t{0},
                 "neuron clusters of the spectral biclustering (0: the same as bicluster_k)", {}, 0.0, {}, {}},
      OptionSpec{"bicluster_method", OptionType::text, std::string(bicluster_normalisation_name(bd.method)),
                 "normalisation before the SVD (sklearn's method)", {"bistochastic", "scale", "log"}, {}, {}, {}},
      OptionSpec{"bicluster_components", OptionType::integer, bd.n_components, "singular vectors examined (sklearn: 6)", {},
                 1.0, {}, {}},
      OptionSpec{"bicluster_best", OptionType::integer, bd.n_best,
                 "singular vectors kept, those best fitted by piecewise-constant vectors (sklearn: 3)", {}, 1.0, {}, {}},
      OptionSpec{"bicluster_n_init", OptionType::integer, std::int64_t{10},
                 "k-means++ initialisations of the biclustering's k-means (sklearn: 10)", {}, 1.0, 1000.0, {}},
      OptionSpec{"bicluster_svd", OptionType::text, std::string("slepc"), "singular vectors by slepc or gram",
                 {"slepc", "gram"}, {}, {}, {}},
      OptionSpec{"bicluster_subsets", OptionType::boolean, true,
                 "rerun the k-means on the neurons of each neuron cluster alone", {}, {}, {}, {}},
  };
  s.run = [](StageRun& run) {
    const OptionValues& o = run.options;
    const PreprocessedData& p = *run.workspace.preprocessed;
    const auto images = static_cast<std::int64_t>(p.image_ids.size());
    const bool both = o.text("points") == "both";
    // The points: the preprocessed block itself (both repeats), or the repeat means.
    const Matrix mean_points = both ? Matrix() : repeat_means(p.repeats, images);
    const Matrix& x = both ? p.repeats : mean_points;
    std::int64_t constant = 0;
    RowScaling scaling;
    if (o.flag("standardize")) {
      // z-score each neuron over the points (s.d. with the population formula, as sklearn's StandardScaler);
      // a constant neuron is left at 0. k-means applies it chunk by chunk as it reads the block, so the
      // stage holds no standardised copy (8 S n bytes per rank).
      const std::int64_t n = x.rows(), m = x.cols();
      const RowMoments mo = row_moments(x);
      scaling.offset = mo.mean;
      scaling.scale.assign(static_cast<std::size_t>(n), 0.0);
      for (std::int64_t i = 0; i < n; ++i) {
        const double sd = std::sqrt(mo.ssd[static_cast<std::size_t>(i)] / static_cast<double>(m));
        if (sd > 0) {
          scaling.scale[static_cast<std::size_t>(i)] = 1.0 / sd;
        } else {
          ++constant;
        }
      }
      constant = run.ctx.sum(constant);
    }
    const RowScaling* standardise = o.flag("standardize") ? &scaling : nullptr;
    KmeansOptions ko;
    ko.k = o.integer("k");
    ko.n_init = static_cast<int>(o.integer("n_init"));
    ko.max_iter = static_cast<int>(o.integer("max_iter"));
    ko.tol = o.real("tol");
    ko.seed = static_cast<std::uint64_t>(o.integer("seed"));
    ko.bounds = o.flag("bounds");
    run.ctx.agree(ko.k >= x.cols(),
                  fmt::format("cluster: k = {} needs more points; the recording {} gives {}", ko.k,
                              run.workspace.recording_path, x.cols()),
                  ExitCode::bad_input);
    const KmeansResult r = kmeans(run.ctx, x, ko, standardise);

    // The seed article's evaluation: the two repeats of an image in the same cluster, against the chance
    // rate of two independent draws from the cluster sizes.
    double same = std::nan(""), chance = std::nan("");
    if (both) {
      same = repeat_agreement(r.labels, images);
      chance = 0;
      for (std::int64_t c : r.sizes) chance += std::pow(static_cast<double>(c) / static_cast<double>(x.cols()), 2);
    }
    // Adjusted Rand index against the image classes, when the recording has them.
    std::vector<std::string> names;
    const std::vector<std::int32_t> classes = run.workspace.open_recording(run.ctx).read_class_labels(run.ctx, &names);
    double ari = std::nan("");
    std::vector<std::int32_t> truth;
    if (!classes.empty()) {
      for (std::int64_t j = 0; j < x.cols(); ++j)
        truth.push_back(classes[static_cast<std::size_t>(p.image_ids[static_cast<std::size_t>(j % images)])]);
      ari = adjusted_rand_index(truth, r.labels);
    }
    log::info("cluster: k-means k = {} on {} points x {} neurons: inertia {:.6g} after {} iterations ({}; {:.0f}% of "
              "point reads skipped by the bounds), {} empty clusters re-seeded; repeats in the same cluster {:.1f}% "
              "(chance {:.1f}%); ARI vs classes {:.3f}",
              ko.k, x.cols(), p.neurons_total, r.inertia, r.iterations, r.converged ? "converged" : "max_iter reached",
              100.0 * static_cast<double>(r.points_skipped) / static_cast<double>(std::max(1, r.iterations) * x.cols()),
              r.reseeded, 100 * same, 100 * chance, ari);

    // The repeat means, for co-clustering and biclustering.
    const std::int64_t cok = o.integer("cocluster_k");
    const std::int64_t bik = o.integer("bicluster_k");
    Matrix repeat_mean;
    if (cok > 0 || bik > 0) repeat_mean = both ? repeat_means(p.repeats, images) : mean_points;

    // Spectral co-clustering on the repeat means, shifted per neuron to be nonnegative.
    CoclusterResult co;
    if (cok > 0) {
      run.ctx.agree(cok < 2, fmt::format("cluster: cocluster_k = {} must be 0 (off) or at least 2", cok), ExitCode::usage);
      Matrix mean = repeat_mean;
      for (std::int64_t i = 0; i < mean.rows(); ++i) {
        double lo = std::numeric_limits<double>::infinity();
        for (std::int64_t j = 0; j < images; ++j) lo = std::min(lo, mean(i, j));
        for (std::int64_t j = 0; j < images; ++j) mean(i, j) -= lo;
      }
      KmeansOptions cko = ko;
      cko.n_init = static_cast<int>(o.integer("cocluster_n_init"));
      const SvdMethod svd = parse_svd_method(o.text("cocluster_svd"));
      co = naming_recording(run, "cluster", [&] { return spectral_cocluster(run.ctx, mean, cok, cko, svd); });
      log::info("cluster: spectral co-clustering into {} co-clusters of {} images and {} neurons ({} singular vectors, {})",
                cok, images, p.neurons_total, co.singular_values.size(), svd_method_name(co.method_used));
    }

    // Spectral biclustering on the repeat means (sklearn shifts the whole matrix itself), then k-means on each
    // neuron cluster's neurons alone.
    BiclusterResult bi;
    BiclusterOptions bo;
    std::vector<KmeansResult> subset_runs;
    std::vector<std::int64_t> subset_neurons;
    std::vector<double> subset_agreement, subset_ari;
    if (bik > 0) {
      bo.image_clusters = bik;
      bo.neuron_clusters = o.integer("bicluster_neuron_k") > 0 ? o.integer("bicluster_neuron_k") : bik;
      run.ctx.agree(bik < 2 || bo.neuron_clusters < 2,
                    fmt::format("cluster: bicluster_k = {} and bicluster_neuron_k = {} must be 0 (off) or at least 2", bik,
                                o.integer("bicluster_neuron_k")),
                    ExitCode::usage);
      bo.method = parse_bicluster_normalisation(o.text("bicluster_method"));
      bo.n_components = o.integer("bicluster_components");
      bo.n_best = o.integer("bicluster_best");
      run.ctx.agree(bo.n_best > bo.n_components,
                    fmt::format("cluster: bicluster_best = {} must not exceed bicluster_components = {}", bo.n_best,
                                bo.n_components),
                    ExitCode::usage);
      bo.kmeans = ko;
      bo.kmeans.n_init = static_cast<int>(o.integer("bicluster_n_init"));
      bo.svd = parse_svd_method(o.text("bicluster_svd"));
      bi = naming_recording(run, "cluster", [&] { return spectral_bicluster(run.ctx, repeat_mean, bo); });
      repeat_mean = Matrix();
      log::info("cluster: spectral biclustering ({}, {} steps; {} of {} singular vectors, {}) into {} image x {} neuron "
                "clusters of {} images and {} neurons",
                bicluster_normalisation_name(bo.method), bi.normalisation_steps, bo.n_best, bo.n_components,
                svd_method_name(bi.method_used), bo.image_clusters, bo.neuron_clusters, images, p.neurons_total);
      if (o.flag("bicluster_subsets")) {
        for (std::int64_t c = 0; c < bo.neuron_clusters; ++c) {
          std::vector<std::int64_t> rows;
          for (std::int64_t i = 0; i < x.rows(); ++i)
            if (bi.neuron_labels[static_cast<std::size_t>(i)] == c) rows.push_back(i);
          const std::int64_t count = run.ctx.sum(static_cast<std::int64_t>(rows.size()));
          Matrix sub(static_cast<std::int64_t>(rows.size()), x.cols());
          for (std::int64_t j = 0; j < x.cols(); ++j)
            for (std::size_t i = 0; i < rows.size(); ++i) sub(static_cast<std::int64_t>(i), j) = x(rows[i], j);
          RowScaling sub_scaling;
          if (standardise != nullptr)
            for (std::int64_t i : rows) {
              sub_scaling.offset.push_back(scaling.offset[static_cast<std::size_t>(i)]);
              sub_scaling.scale.push_back(scaling.scale[static_cast<std::size_t>(i)]);
            }
          subset_runs.push_back(kmeans(run.ctx, sub, ko, standardise != nullptr ? &sub_scaling : nullptr));
          const KmeansResult& sr = subset_runs.back();
          subset_neurons.push_back(count);
          subset_agreement.push_back(both ? repeat_agreement(sr.labels, images) : std::nan(""));
          subset_ari.push_back(truth.empty() ? std::nan("") : adjusted_rand_index(truth, sr.labels));
          log::info("cluster: k-means on neuron cluster {} ({} neurons): repeats in the same cluster {:.1f}% (all neurons "
                    "{:.1f}%); ARI vs classes {:.3f} (all neurons {:.3f})",
                    c, count, 100 * subset_agreement.back(), 100 * same, subset_ari.back(), ari);
        }
      }
    }

    if (run.results == nullptr) return;
    StageWriter w = run.results->begin_stage(run.ctx, "cluster");
    if (cok > 0) {
      w.replicated("cocluster/image_labels", co.image_labels, "co-cluster of each image (image_ids order)");
      const std::vector<std::int64_t> nl(co.neuron_labels.begin(), co.neuron_labels.end());
      w.distributed<std::int64_t>("cocluster/neuron_labels", p.neurons_total, p.neuron_offset, static_cast<std::int64_t>(nl.size()), 1,
                                  nl, "co-cluster of each neuron (preprocessed order)");
      w.replicated("cocluster/singular_values", co.singular_values, "leading singular values of Dr^-1/2 X Dc^-1/2");
      w.scalar("cocluster/inertia", co.inertia, "inertia of the k-means on the spectral embedding");
    }
    if (bik > 0) {
      w.replicated("bicluster/image_labels", bi.image_labels, "image cluster of each image (image_ids order)");
      const std::vector<std::int64_t> nl(bi.neuron_labels.begin(), bi.neuron_labels.end());
      w.distributed<std::int64_t>("bicluster/neuron_labels", p.neurons_total, p.neuron_offset, static_cast<std::int64_t>(nl.size()), 1,
                                  nl, "neuron cluster of each neuron (preprocessed order)");
      w.replicated("bicluster/singular_values", bi.singular_values,
                   "leading singular values of the normalised repeat means (the first, trivial one included unless log)");
      w.replicated("bicluster/best_image_vectors", bi.best_image_vectors,
                   "image-side singular vectors kept (0 = the first non-trivial one)");
      w.replicated("bicluster/best_neuron_vectors", bi.best_neuron_vectors,
                   "neuron-side singular vectors kept (0 = the first non-trivial one)");
      w.scalar("bicluster/shift", bi.shift, "added to the repeat means to make them nonnegative (>= 1 for log)");
      w.scalar("bicluster/normalisation_steps", static_cast<std::int64_t>(bi.normalisation_steps),
               "scaling steps of the normalisation (bistochastic: until the change is below 1e-5)");
      w.attribute("bicluster_method", std::string(bicluster_normalisation_name(bo.method)));
      if (!subset_runs.empty()) {
        std::vector<std::int64_t> labels;
        for (const KmeansResult& sr : subset_runs) labels.insert(labels.end(), sr.labels.begin(), sr.labels.end());
        w.replicated("bicluster/subset_labels", labels,
                     "k-means labels of the points on each neuron cluster's neurons alone [neuron cluster, point]",
                     {static_cast<std::int64_t>(subset_runs.size()), x.cols()});
        w.replicated("bicluster/subset_neurons", subset_neurons, "neurons in each neuron cluster");
        w.replicated("bicluster/subset_repeat_agreement", subset_agreement,
                     "repeat agreement of the k-means on each neuron cluster's neurons (compare repeat_agreement)");
        w.replicated("bicluster/subset_ari_classes", subset_ari,
                     "ARI against the image classes of the k-means on each neuron cluster's neurons (NaN without classes)");
      }
    }
    w.replicated("labels", r.labels, "cluster of each point (points: repeat 1 of every image, then repeat 2, or the repeat means)");
    w.replicated("sizes", r.sizes, "points per cluster");
    w.replicated("init_points", r.init_points, "the points k-means++ chose as initial centres (kept initialisation)");
    w.scalar("inertia", r.inertia, "sum of squared distances of the points to their centres");
    w.scalar("iterations", static_cast<std::int64_t>(r.iterations), "Lloyd iterations of the kept initialisation");
    w.scalar("reseeded", r.reseeded, "empty clusters re-seeded with the farthest points");
    w.scalar("lloyd_seconds", run.ctx.max(r.lloyd_seconds),
             "wall time of the Lloyd iterations alone (no standardisation or k-means++), slowest rank, s");
    w.scalar("lloyd_points_skipped", r.points_skipped,
             "point reads the triangle-inequality bounds saved in Lloyd (of iterations x points)");
    w.scalar("repeat_agreement", same, "fraction of images whose two repeats share a cluster (NaN unless points = both)");
    w.scalar("repeat_agreement_chance", chance, "sum over clusters of (size / points)^2");
    w.scalar("ari_classes", ari, "adjusted Rand index of the clusters against the image classes (NaN without classes)");
    w.replicated("image_ids", p.image_ids, "image id of each stimulus");
    // Centres: [neuron, cluster] rows of this rank's neurons (row-major).
    const std::int64_t n_local = r.centres.rows();
    std::vector<double> rows(static_cast<std::size_t>(n_local * ko.k));
    for (std::int64_t i = 0; i < n_local; ++i)
      for (std::int64_t c = 0; c < ko.k; ++c) rows[static_cast<std::size_t>(i * ko.k + c)] = r.centres(i, c);
    w.distributed<double>("centres", p.neurons_total, p.neuron_offset, n_local, ko.k, rows,
                          "cluster centres in (standardised) response space [neuron, cluster]");
    w.attribute("converged", std::string(r.converged ? "yes" : "no"));
    w.attribute("points", std::string(o.text("points")));
    w.attribute("constant_neurons", constant);
    w.commit(run.identity, o.canonical());
  };
  return s;
}

}  // namespace popcode
