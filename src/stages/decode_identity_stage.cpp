// Stage `decode-identity`: nearest-neighbour decoding of image identity across repeats, for the whole
// population and over random neuron subsets (solvers/identity_decoding.hpp). Writes /decode_identity.
#include <fmt/format.h>

#include "solvers/identity_decoding.hpp"
#include "src/log.hpp"
#include "src/stages/stage_util.hpp"

namespace popcode {

StageSpec decode_identity_stage() {
  StageSpec s;
  s.name = "decode-identity";
  s.summary = "image identity decoded across repeats by the most similar population vector (Stringer et al. 2019)";
  s.needs = {"preprocess"};
  s.options = {
      OptionSpec{"similarity", OptionType::text, std::string("correlation"),
                 "correlation (Pearson over neurons of z-scored vectors, the anchor) or dot (their dot product)",
                 {"correlation", "dot"}, {}, {}, {}},
      OptionSpec{"max_subset_exponent", OptionType::integer, std::int64_t{12},
                 "neuron subsets of 2^0 .. 2^this (those below the population size), then all neurons", {}, 0.0, 30.0, {}},
      OptionSpec{"draws", OptionType::integer, std::int64_t{5}, "random draws of each subset size", {}, 1.0, 1000.0, {}},
      OptionSpec{"seed", OptionType::integer, std::int64_t{0}, "seed of the neuron draws", {}, 0.0, {}, {}},
  };
  s.run = [](StageRun& run) {
    const OptionValues& o = run.options;
    const PreprocessedData& p = *run.workspace.preprocessed;
    const auto s_count = static_cast<std::int64_t>(p.image_ids.size());
    run.ctx.agree(s_count < 2 || p.neurons_total < 1,
                  fmt::format("decode-identity needs at least 2 images with both repeats and 1 neuron; the preprocessed "
                              "recording {} has {} images and {} neurons",
                              run.workspace.recording_path, s_count, p.neurons_total),
                  ExitCode::bad_input);
    const IdentitySimilarity sim = parse_identity_similarity(o.text("similarity"));
    const IdentityDecoding full = decode_identity(run.ctx, p.repeats, {}, true, sim);
    const double chance = 1.0 / static_cast<double>(s_count);
    log::info("decode-identity: {:.1f}% of {} images decoded across repeats from {} neurons ({} similarity; chance {:.3f}%); "
              "{} undecided, {} constant neuron-repeats set to 0",
              100 * full.accuracy, s_count, full.neurons, identity_similarity_name(sim), 100 * chance, full.undecided,
              full.zero_variance_neurons);

    IdentityCurveOptions co;
    for (std::int64_t e = 0; e <= o.integer("max_subset_exponent"); ++e)
      if ((std::int64_t{1} << e) < p.neurons_total) co.subset_sizes.push_back(std::int64_t{1} << e);
    co.subset_sizes.push_back(p.neurons_total);
    co.draws = static_cast<int>(o.integer("draws"));
    co.seed = static_cast<std::uint64_t>(o.integer("seed"));
    co.similarity = sim;
    const IdentityCurve curve = identity_curve(run.ctx, p.repeats, p.neuron_offset, p.neurons_total, co);
    for (std::size_t i = 0; i < curve.sizes.size(); ++i)
      log::info("decode-identity: {:>7} neurons: {:6.2f}% +- {:.2f}%", curve.sizes[i], 100 * curve.mean[i], 100 * curve.std[i]);

    if (run.results == nullptr) return;
    StageWriter w = run.results->begin_stage(run.ctx, "decode_identity");
    w.replicated("predicted", full.predicted,
                 "for each stimulus in repeat 2, the repeat-1 stimulus decoded (index into image_ids; -1: undecided)");
    std::vector<std::uint8_t> correct(full.predicted.size());
    for (std::size_t i = 0; i < correct.size(); ++i) correct[i] = full.predicted[i] == static_cast<std::int32_t>(i) ? 1 : 0;
    w.replicated("correct", correct, "1 where the stimulus was decoded as itself");
    w.replicated("true_similarity", full.true_similarity, "similarity of each stimulus's two repeats (NaN: undefined)");
    w.replicated("true_rank", full.true_rank, "repeat-1 stimuli more similar to the query than its own repeat (0: decoded)");
    w.replicated("image_ids", p.image_ids, "image id of each stimulus");
    w.scalar("accuracy", full.accuracy, "fraction of stimuli decoded as themselves, all neurons");
    w.scalar("chance", chance, "1 / number of stimuli");
    w.scalar("undecided", full.undecided, "queries with no defined similarity (counted as wrong)");
    const auto n_sizes = static_cast<std::int64_t>(curve.sizes.size());
    w.replicated("subsets/neurons", curve.sizes, "neurons in each subset size");
    w.replicated("subsets/accuracy", curve.accuracy, "accuracy of each draw [size, draw]", {n_sizes, co.draws});
    w.replicated("subsets/undecided", curve.undecided, "undecided queries of each draw [size, draw]", {n_sizes, co.draws});
    w.replicated("subsets/accuracy_mean", curve.mean, "mean accuracy over draws");
    w.replicated("subsets/accuracy_std", curve.std, "s.d. of accuracy over draws (draws - 1)");
    w.attribute("similarity", std::string(identity_similarity_name(sim)));
    w.attribute("neurons", full.neurons);
    w.attribute("stimuli", s_count);
    w.attribute("zero_variance_neuron_repeats", full.zero_variance_neurons);
    w.attribute("draws", static_cast<std::int64_t>(co.draws));
    w.commit(run.identity, o.canonical());
  };
  return s;
}

}  // namespace popcode
