// Stage `preprocess`: repeat-split, spontaneous-corrected responses for the analysis stages
// (solvers/preprocess.hpp). Writes its statistics to /preprocess, and the preprocessed responses when
// save_responses is set.
#include <fmt/format.h>

#include "io/h5.hpp"
#include "src/log.hpp"
#include "src/stages/stage_util.hpp"

namespace popcode {

StageSpec preprocess_stage() {
  const PreprocessOptions d;
  StageSpec s;
  s.name = "preprocess";
  s.summary = "drop gray screens and GAD+ cells, z-score by spontaneous activity, remove spontaneous PCs, split repeats";
  const auto flag = [](const std::string& key, bool def, const std::string& help) {
    return OptionSpec{key, OptionType::boolean, def, help, {}, {}, {}, {}};
  };
  s.options = {
      flag("drop_gad", d.drop_gad, "drop GAD+ neurons (/neurons/gad_positive)"),
      flag("drop_gray", d.drop_gray, "drop gray-screen presentations (false: treat them as one extra image)"),
      OptionSpec{"nan_policy", OptionType::text, std::string("zero"), "NaN responses: zero (as the anchor) or error",
                 {"zero", "error"}, {}, {}, {}},
      flag("zscore_spont", d.zscore_spont, "z-score each neuron with its spontaneous mean and s.d."),
      OptionSpec{"spont_pcs", OptionType::integer, d.spont_pcs, "spontaneous PCs to project out (0: none)", {}, 0.0, {}, {}},
      OptionSpec{"svd", OptionType::text, std::string("auto"),
                 "spontaneous SVD: gram (exact, T x T replicated), slepc (iterative, distributed) or auto",
                 {"auto", "gram", "slepc"}, {}, {}, {}},
      flag("center", d.center, "subtract each neuron's mean over presentations"),
      flag("save_responses", false, "write the preprocessed responses to /preprocess/repeat_responses (2 x S x N)"),
  };
  s.run = [](StageRun& run) {
    const OptionValues& o = run.options;
    PreprocessOptions po;
    po.drop_gad = o.flag("drop_gad");
    po.drop_gray = o.flag("drop_gray");
    po.nan_policy = o.text("nan_policy") == "error" ? NanPolicy::error : NanPolicy::zero;
    po.zscore_spont = o.flag("zscore_spont");
    po.spont_pcs = o.integer("spont_pcs");
    po.svd = parse_svd_method(o.text("svd"));
    po.center = o.flag("center");
    const Recording& rec = run.workspace.open_recording(run.ctx);
    run.workspace.preprocessed = preprocess(run.ctx, rec, po);
    const PreprocessedData& p = *run.workspace.preprocessed;
    const PreprocessStats& st = p.stats;
    log::info("preprocess: {} of {} neurons, {} images with 2 repeats ({} gray screens dropped, {} images unrepeated); "
              "{} spontaneous PCs removed ({:.1f}% of spontaneous variance, {:.1f}% of response variance)",
              st.neurons_kept, st.neurons_in, st.images_kept, st.gray_dropped, st.images_unrepeated, st.spont_pcs_removed,
              100 * st.spont_variance_removed, 100 * st.response_variance_removed);
    if (run.results == nullptr) return;
    copy_truth(run);
    StageWriter w = run.results->begin_stage(run.ctx, "preprocess");
    w.replicated("image_ids", p.image_ids, "image id of each stimulus (column) of the preprocessed responses");
    w.distributed<std::int64_t>("neuron_index", p.neurons_total, p.neuron_offset, static_cast<std::int64_t>(p.neuron_index.size()), 1,
                                p.neuron_index, "recording index of each kept neuron");
    if (st.gray_presentations > 0) {
      const auto n_local = static_cast<std::int64_t>(p.neuron_index.size());
      w.distributed<double>("gray_mean", p.neurons_total, p.neuron_offset, n_local, 1, p.gray_mean,
                            "mean of each kept neuron's gray-screen responses after z-scoring, spontaneous-PC removal and centring");
      w.distributed<double>("gray_sd", p.neurons_total, p.neuron_offset, n_local, 1, p.gray_sd,
                            "s.d. (ddof 0, + 1e-6) of the same gray-screen responses");
    }
    w.replicated("spont_singular_values", st.spont_singular_values,
                 "singular values of the z-scored spontaneous matrix (time x neurons), leading spont_pcs");
    w.attribute("recording", rec.info().path);
    for (const auto& [key, value] : std::vector<std::pair<const char*, std::int64_t>>{
             {"neurons_in", st.neurons_in}, {"neurons_kept", st.neurons_kept}, {"gad_dropped", st.gad_dropped},
             {"presentations_in", st.presentations_in}, {"gray_dropped", st.gray_dropped}, {"gray_presentations", st.gray_presentations}, {"images_kept", st.images_kept},
             {"images_unrepeated", st.images_unrepeated}, {"presentations_unused", st.presentations_unused},
             {"nan_responses", st.nan_responses}, {"nan_spontaneous", st.nan_spont}, {"spont_timepoints", st.spont_timepoints},
             {"spont_pcs_removed", st.spont_pcs_removed}}) {
      w.attribute(key, value);
    }
    w.attribute("zscored_with_spontaneous", std::string(st.zscored_with_spont ? "yes" : "no"));
    w.attribute("spont_variance_removed", st.spont_variance_removed);
    w.attribute("response_variance_removed", st.response_variance_removed);
    w.attribute("svd_method", st.svd_method.empty() ? std::string("none") : st.svd_method);
    if (o.flag("save_responses")) {
      const std::int64_t s_count = static_cast<std::int64_t>(p.image_ids.size());
      const std::string path = w.path_of("repeat_responses");
      h5::create_dataset<double>(w.file(), path, {2, s_count, p.neurons_total});
      const auto n_local = static_cast<std::int64_t>(p.neuron_index.size());
      // The block (n_local x 2S, column-major) is the row-major [2][S][n_local] hyperslab.
      h5::write_block<double>(w.file(), path, {0, 0, p.neuron_offset}, {n_local ? 2 : 0, n_local ? s_count : 0, n_local},
                              p.repeats.values());
      h5::write_attribute(w.file(), path, "description",
                          "preprocessed responses: [repeat, stimulus (image_ids order), neuron (neuron_index order)]");
    }
    w.commit(run.identity, o.canonical());
  };
  return s;
}

}  // namespace popcode
