#include "solvers/preprocess.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <numeric>

#include "solvers/dense.hpp"
#include "src/log.hpp"

namespace popcode {

RepeatSplit split_repeats(const std::vector<std::int32_t>& ids, const std::vector<double>& times,
                          const std::vector<std::int64_t>& kept) {
  std::map<std::int32_t, std::vector<std::int64_t>> by_image;  // ordered by image id
  for (std::int64_t p : kept) by_image[ids[static_cast<std::size_t>(p)]].push_back(p);
  RepeatSplit out;
  for (auto& [image, presentations] : by_image) {
    std::stable_sort(presentations.begin(), presentations.end(),
                     [&](std::int64_t a, std::int64_t b) { return times[a] < times[b]; });
    const auto m = static_cast<std::int64_t>(presentations.size());
    const std::int64_t half = m / 2, second_start = (m + 1) / 2;
    if (half == 0) {
      ++out.images_unrepeated;
      out.presentations_unused += m;
      continue;
    }
    out.image_ids.push_back(image);
    out.first.emplace_back(presentations.begin(), presentations.begin() + half);
    out.second.emplace_back(presentations.begin() + second_start, presentations.begin() + second_start + half);
    out.presentations_unused += m - 2 * half;
  }
  return out;
}

namespace {

// Per-row mean and population standard deviation (+ 1e-6) of a block over its columns.
void row_mean_sd(const Matrix& m, std::vector<double>& mu, std::vector<double>& sd) {
  RowMoments r = row_moments(m);
  mu = std::move(r.mean);
  sd = std::move(r.ssd);
  for (double& v : sd) v = std::sqrt(v / static_cast<double>(m.cols())) + 1e-6;
}

void normalise_rows(Matrix& m, const std::vector<double>& mu, const std::vector<double>& sd) {
  for (std::int64_t j = 0; j < m.cols(); ++j)
    for (std::int64_t i = 0; i < m.rows(); ++i) m(i, j) = (m(i, j) - mu[i]) / sd[i];
}

double frobenius2(const Matrix& m) {
  double s = 0;
  for (double v : m.values()) s += v * v;
  return s;
}

// NaN -> 0 in place (policy zero); Inf is refused before this point.
void zero_nans(Matrix& m) {
  for (double& v : m.values())
    if (std::isnan(v)) v = 0.0;
}

void check_values(const Context& ctx, const ValueCounts& c, const std::string& file, const char* dataset, NanPolicy policy) {
  if (c.inf > 0) {
    throw InputError(fmt::format("{}: {} holds {} infinite values; popcode refuses Inf (fix or mask the data)", file,
                                 dataset, c.inf), true);
  }
  if (c.nan > 0 && policy == NanPolicy::error) {
    throw InputError(fmt::format("{}: {} holds {} NaN values and preprocess.nan_policy = \"error\" "
                                 "(\"zero\" replaces them with 0, as the Stringer et al. code does)", file, dataset, c.nan), true);
  }
  if (c.nan > 0 && ctx.root()) log::warn_once("{}: {} NaN values in {} replaced by 0", file, c.nan, dataset);
}

}  // namespace

PreprocessedData preprocess(const Context& ctx, const Recording& recording, const PreprocessOptions& opt) {
  const RecordingInfo& info = recording.info();
  const BlockLayout layout(info.neurons, ctx.size());
  const Range mine = layout.range(ctx.rank());
  PreprocessedData out;
  PreprocessStats& st = out.stats;
  st.neurons_in = info.neurons;
  st.presentations_in = info.presentations;
  if (ctx.root() && info.neurons < ctx.size()) {
    log::warn_once("{} neurons on {} ranks: {} ranks hold no neurons and only take part in reductions", info.neurons,
                   ctx.size(), ctx.size() - info.neurons);
  }

  // Step 1: which local neurons to keep.
  std::vector<std::int64_t> keep_rows;
  {
    const std::vector<std::uint8_t> gad = opt.drop_gad ? recording.read_gad(ctx, mine) : std::vector<std::uint8_t>(mine.size(), 0);
    for (std::int64_t i = 0; i < mine.size(); ++i) {
      if (gad[static_cast<std::size_t>(i)] == 0) {
        keep_rows.push_back(i);
        out.neuron_index.push_back(mine.begin + i);
      }
    }
  }
  const auto kept_local = static_cast<std::int64_t>(keep_rows.size());
  out.neurons_total = ctx.sum(kept_local);
  out.neuron_offset = ctx.exclusive_prefix(kept_local);
  st.neurons_kept = out.neurons_total;
  st.gad_dropped = info.neurons - out.neurons_total;
  if (out.neurons_total == 0) throw InputError(fmt::format("{}: no neurons left after dropping GAD+ cells", info.path), true);

  // Step 2: presentations to keep, and the read.
  std::vector<std::int32_t> ids = info.stimulus_id;
  std::vector<std::int64_t> kept_presentations, gray_presentations;
  for (std::int64_t p = 0; p < info.presentations; ++p) {
    if (ids[p] == kGrayScreenId) {
      gray_presentations.push_back(p);
      if (opt.drop_gray) {
        ++st.gray_dropped;
        continue;
      }
      ids[p] = static_cast<std::int32_t>(info.images);  // gray screens as one extra image
    }
    kept_presentations.push_back(p);
  }
  if (kept_presentations.empty()) {
    throw InputError(fmt::format("{}: no stimulus presentations left after dropping gray screens", info.path), true);
  }
  ValueCounts resp_counts;
  Matrix resp = recording.read_responses(ctx, mine, &resp_counts);
  check_values(ctx, resp_counts, info.path, "/responses", opt.nan_policy);
  st.nan_responses = resp_counts.nan;
  // The gray screens, kept aside: they go through steps 3-5 with the responses' transforms, for their
  // per-neuron statistics (PreprocessedData::gray_mean / gray_sd).
  const auto n_gray = static_cast<std::int64_t>(gray_presentations.size());
  st.gray_presentations = n_gray;
  Matrix gray(kept_local, n_gray);
  for (std::int64_t j = 0; j < n_gray; ++j)
    for (std::int64_t r = 0; r < kept_local; ++r) gray(r, j) = resp(keep_rows[static_cast<std::size_t>(r)], gray_presentations[static_cast<std::size_t>(j)]);
  zero_nans(gray);
  resp.keep(keep_rows, kept_presentations);
  zero_nans(resp);

  // Steps 3-4 need the spontaneous block.
  const bool have_spont = info.spont_timepoints > 0;
  const bool want_spont = opt.zscore_spont || opt.spont_pcs > 0;
  Matrix spont;
  if (want_spont && have_spont) {
    ValueCounts spont_counts;
    spont = recording.read_spontaneous(ctx, mine, &spont_counts);
    std::vector<std::int64_t> all_timepoints(static_cast<std::size_t>(spont.cols()));
    std::iota(all_timepoints.begin(), all_timepoints.end(), 0);
    spont.keep(keep_rows, all_timepoints);
    check_values(ctx, spont_counts, info.path, "/spontaneous", opt.nan_policy);
    st.nan_spont = spont_counts.nan;
    zero_nans(spont);
    st.spont_timepoints = info.spont_timepoints;
  } else if (want_spont) {
    log::warn_once("{}: no /spontaneous: z-scoring with the responses' own statistics and removing no spontaneous PCs",
                   info.path);
  }

  if (opt.zscore_spont) {
    std::vector<double> mu, sd;
    row_mean_sd(have_spont ? spont : resp, mu, sd);
    normalise_rows(resp, mu, sd);
    normalise_rows(gray, mu, sd);
    if (have_spont) normalise_rows(spont, mu, sd);
    st.zscored_with_spont = have_spont;
  }

  if (opt.spont_pcs > 0 && have_spont) {
    const std::int64_t limit = std::min(out.neurons_total, info.spont_timepoints);
    if (opt.spont_pcs >= limit) {
      throw UsageError(fmt::format("preprocess.spont_pcs = {} but the spontaneous matrix ({} time points x {} neurons) "
                                   "has rank at most {}: choose fewer PCs", opt.spont_pcs, info.spont_timepoints,
                                   out.neurons_total, limit), true);
    }
    const double spont_total = ctx.sum(frobenius2(spont));
    const double resp_before = ctx.sum(frobenius2(resp));
    TruncatedSvd svd = leading_singular_triplets(ctx, spont, opt.spont_pcs, opt.svd);
    spont = Matrix();
    st.svd_method = svd_method_name(svd.method_used);
    st.spont_singular_values = svd.singular_values;
    double removed = 0;
    for (double s : svd.singular_values) removed += s * s;
    st.spont_variance_removed = spont_total > 0 ? removed / spont_total : 0.0;
    // resp <- resp - V (V^T resp): the k x P projection is summed over ranks.
    Matrix proj(opt.spont_pcs, resp.cols());
    gemm(Trans::yes, Trans::no, 1.0, svd.u_local, resp, 0.0, proj);
    ctx.allreduce_sum(proj.values());
    gemm(Trans::no, Trans::no, -1.0, svd.u_local, proj, 1.0, resp);
    if (n_gray > 0) {  // the same projection for the gray screens (n_gray is the same on every rank)
      Matrix gray_proj(opt.spont_pcs, n_gray);
      gemm(Trans::yes, Trans::no, 1.0, svd.u_local, gray, 0.0, gray_proj);
      ctx.allreduce_sum(gray_proj.values());
      gemm(Trans::no, Trans::no, -1.0, svd.u_local, gray_proj, 1.0, gray);
    }
    st.spont_pcs_removed = opt.spont_pcs;
    const double resp_after = ctx.sum(frobenius2(resp));
    st.response_variance_removed = resp_before > 0 ? 1.0 - resp_after / resp_before : 0.0;
  }

  if (opt.center) {
    for (std::int64_t i = 0; i < resp.rows(); ++i) {
      double m = 0;
      for (std::int64_t j = 0; j < resp.cols(); ++j) m += resp(i, j);
      m /= static_cast<double>(resp.cols());
      for (std::int64_t j = 0; j < resp.cols(); ++j) resp(i, j) -= m;
      for (std::int64_t j = 0; j < n_gray; ++j) gray(i, j) -= m;
    }
  }
  if (n_gray > 0) row_mean_sd(gray, out.gray_mean, out.gray_sd);

  // Step 6, on columns of `resp` (index into kept_presentations).
  std::vector<std::int64_t> column_of(static_cast<std::size_t>(info.presentations), -1);
  for (std::size_t j = 0; j < kept_presentations.size(); ++j) column_of[kept_presentations[j]] = static_cast<std::int64_t>(j);
  const RepeatSplit split = split_repeats(ids, info.presentation_time, kept_presentations);
  const auto s = static_cast<std::int64_t>(split.image_ids.size());
  st.images_kept = s;
  st.images_unrepeated = split.images_unrepeated;
  st.presentations_unused = split.presentations_unused;
  if (s < 2) {
    throw InputError(fmt::format("{}: {} images were presented at least twice; cvPCA and the repeat-based analyses need at "
                                 "least 2", info.path, s), true);
  }
  out.image_ids = split.image_ids;
  bool single = true;  // every repeat one presentation (images shown twice): the result is a column selection
  for (std::int64_t k = 0; k < s; ++k) single = single && split.first[k].size() == 1 && split.second[k].size() == 1;
  if (single) {  // in place: no second n_local x 2S block beside the responses
    std::vector<std::int64_t> order(static_cast<std::size_t>(2 * s));
    for (std::int64_t k = 0; k < s; ++k) {
      order[static_cast<std::size_t>(k)] = column_of[split.first[k][0]];
      order[static_cast<std::size_t>(s + k)] = column_of[split.second[k][0]];
    }
    resp.select_columns(order);
    out.repeats = std::move(resp);
    return out;
  }
  out.repeats = Matrix(kept_local, 2 * s);
  for (std::int64_t k = 0; k < s; ++k) {
    for (int rep = 0; rep < 2; ++rep) {
      const auto& group = rep == 0 ? split.first[k] : split.second[k];
      auto dst = out.repeats.col(rep * s + k);
      for (std::int64_t p : group) {
        const auto src = resp.col(column_of[p]);
        for (std::int64_t i = 0; i < kept_local; ++i) dst[i] += src[i];
      }
      for (double& v : dst) v /= static_cast<double>(group.size());
    }
  }
  return out;
}

}  // namespace popcode
