// Stage `cluster`: k-means on standardised stimulus responses (solvers/kmeans.hpp) with the seed article's
// evaluation (how often the two repeats of an image share a cluster) and the adjusted Rand index against
// the recording's image classes when it has them. Writes /cluster.
//
// With cocluster_k >= 2, also spectral co-clustering (Dhillon; solvers/spectral_cocluster.hpp) of images and
// neurons on the repeat-mean responses, each neuron shifted by its minimum so the matrix is nonnegative.
// Not yet here (issue 3): spectral biclustering (Kluger), and k-means on the neurons a bicluster selects.
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <limits>

#include "solvers/dense.hpp"
#include "solvers/kmeans.hpp"
#include "solvers/spectral_cocluster.hpp"
#include "src/log.hpp"
#include "src/stages/stage_util.hpp"

namespace popcode {

StageSpec cluster_stage() {
  const KmeansOptions d;
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
      OptionSpec{"cocluster_k", OptionType::integer, std::int64_t{0},
                 "spectral co-clusters of images and neurons (Dhillon; 0: none)", {}, 0.0, {}, {}},
      OptionSpec{"cocluster_n_init", OptionType::integer, std::int64_t{10},
                 "k-means++ initialisations of the co-clustering's k-means (sklearn: 10)", {}, 1.0, 1000.0, {}},
      OptionSpec{"cocluster_svd", OptionType::text, std::string("slepc"), "singular vectors by slepc or gram",
                 {"slepc", "gram"}, {}, {}, {}},
  };
  s.run = [](StageRun& run) {
    const OptionValues& o = run.options;
    const PreprocessedData& p = *run.workspace.preprocessed;
    const auto images = static_cast<std::int64_t>(p.image_ids.size());
    const bool both = o.text("points") == "both";
    Matrix x;
    if (both) {
      x = p.repeats;
    } else {
      x = Matrix(p.repeats.rows(), images);
      for (std::int64_t j = 0; j < images; ++j)
        for (std::int64_t i = 0; i < x.rows(); ++i) x(i, j) = 0.5 * (p.repeats(i, j) + p.repeats(i, images + j));
    }
    std::int64_t constant = 0;
    if (o.flag("standardize")) {
      // z-score each neuron over the points (s.d. with the population formula, as sklearn's StandardScaler);
      // a constant neuron is left at 0. Column by column: the block is column-major.
      const std::int64_t n = x.rows(), m = x.cols();
      const RowMoments mo = row_moments(x);
      const std::vector<double>& mean = mo.mean;
      std::vector<double> inv(static_cast<std::size_t>(n), 0.0);
      for (std::int64_t i = 0; i < n; ++i) {
        const double sd = std::sqrt(mo.ssd[static_cast<std::size_t>(i)] / static_cast<double>(m));
        if (sd > 0) {
          inv[static_cast<std::size_t>(i)] = 1.0 / sd;
        } else {
          ++constant;
        }
      }
      for (std::int64_t j = 0; j < m; ++j)
        for (std::int64_t i = 0; i < n; ++i) x(i, j) = (x(i, j) - mean[static_cast<std::size_t>(i)]) * inv[static_cast<std::size_t>(i)];
      constant = run.ctx.sum(constant);
    }
    KmeansOptions ko;
    ko.k = o.integer("k");
    ko.n_init = static_cast<int>(o.integer("n_init"));
    ko.max_iter = static_cast<int>(o.integer("max_iter"));
    ko.tol = o.real("tol");
    ko.seed = static_cast<std::uint64_t>(o.integer("seed"));
    run.ctx.agree(ko.k >= x.cols(),
                  fmt::format("cluster: k = {} needs more points; the recording {} gives {}", ko.k,
                              run.workspace.recording_path, x.cols()),
                  ExitCode::bad_input);
    const KmeansResult r = kmeans(run.ctx, x, ko);

    // The seed article's evaluation: the two repeats of an image in the same cluster, against the chance
    // rate of two independent draws from the cluster sizes.
    double same = std::nan(""), chance = std::nan("");
    if (both) {
      std::int64_t agree = 0;
      for (std::int64_t j = 0; j < images; ++j)
        agree += r.labels[static_cast<std::size_t>(j)] == r.labels[static_cast<std::size_t>(images + j)] ? 1 : 0;
      same = static_cast<double>(agree) / static_cast<double>(images);
      chance = 0;
      for (std::int64_t c : r.sizes) chance += std::pow(static_cast<double>(c) / static_cast<double>(x.cols()), 2);
    }
    // Adjusted Rand index against the image classes, when the recording has them.
    std::vector<std::string> names;
    const std::vector<std::int32_t> classes = run.workspace.open_recording(run.ctx).read_class_labels(run.ctx, &names);
    double ari = std::nan("");
    if (!classes.empty()) {
      std::vector<std::int32_t> truth;
      for (std::int64_t j = 0; j < x.cols(); ++j)
        truth.push_back(classes[static_cast<std::size_t>(p.image_ids[static_cast<std::size_t>(j % images)])]);
      ari = adjusted_rand_index(truth, r.labels);
    }
    log::info("cluster: k-means k = {} on {} points x {} neurons: inertia {:.6g} after {} iterations ({}), {} empty "
              "clusters re-seeded; repeats in the same cluster {:.1f}% (chance {:.1f}%); ARI vs classes {:.3f}",
              ko.k, x.cols(), p.neurons_total, r.inertia, r.iterations, r.converged ? "converged" : "max_iter reached",
              r.reseeded, 100 * same, 100 * chance, ari);

    // Spectral co-clustering on the repeat means, shifted per neuron to be nonnegative.
    const std::int64_t cok = o.integer("cocluster_k");
    CoclusterResult co;
    if (cok > 0) {
      run.ctx.agree(cok < 2, fmt::format("cluster: cocluster_k = {} must be 0 (off) or at least 2", cok), ExitCode::usage);
      Matrix mean(p.repeats.rows(), images);
      for (std::int64_t i = 0; i < mean.rows(); ++i) {
        double lo = std::numeric_limits<double>::infinity();
        for (std::int64_t j = 0; j < images; ++j) {
          mean(i, j) = 0.5 * (p.repeats(i, j) + p.repeats(i, images + j));
          lo = std::min(lo, mean(i, j));
        }
        for (std::int64_t j = 0; j < images; ++j) mean(i, j) -= lo;
      }
      KmeansOptions cko = ko;
      cko.n_init = static_cast<int>(o.integer("cocluster_n_init"));
      co = spectral_cocluster(run.ctx, mean, cok, cko, parse_svd_method(o.text("cocluster_svd")));
      log::info("cluster: spectral co-clustering into {} co-clusters of {} images and {} neurons ({} singular vectors, {})",
                cok, images, p.neurons_total, co.singular_values.size(), svd_method_name(co.method_used));
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
    w.replicated("labels", r.labels, "cluster of each point (points: repeat 1 of every image, then repeat 2, or the repeat means)");
    w.replicated("sizes", r.sizes, "points per cluster");
    w.replicated("init_points", r.init_points, "the points k-means++ chose as initial centres (kept initialisation)");
    w.scalar("inertia", r.inertia, "sum of squared distances of the points to their centres");
    w.scalar("iterations", static_cast<std::int64_t>(r.iterations), "Lloyd iterations of the kept initialisation");
    w.scalar("reseeded", r.reseeded, "empty clusters re-seeded with the farthest points");
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
