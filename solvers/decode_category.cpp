// Image category decoding with cross-validated MLP / linear decoders (see decode_category.hpp).
#include "solvers/decode_category.hpp"

#include <fmt/format.h>
#include <torch/torch.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <limits>
#include <map>

#include "solvers/decode_common.hpp"
#include "solvers/nets/cnn.hpp"
#include "solvers/nets/mlp.hpp"
#include "solvers/train/trainer.hpp"
#include "src/log.hpp"

namespace popcode {
namespace {

using decode::local_rows;
using decode::rows_of;
using decode::shuffle;

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

std::string trim(std::string s) {
  while (!s.empty() && s.front() == ' ') s.erase(s.begin());
  while (!s.empty() && s.back() == ' ') s.pop_back();
  return s;
}

std::vector<std::string> split(const std::string& text, char sep) {
  std::vector<std::string> parts;
  std::size_t at = 0;
  while (at <= text.size()) {
    const std::size_t end = std::min(text.find(sep, at), text.size());
    parts.push_back(trim(text.substr(at, end - at)));
    at = end + 1;
  }
  return parts;
}

}  // namespace

std::vector<std::vector<std::int32_t>> parse_class_merge(const std::string& text, const std::vector<std::string>& names) {
  std::vector<std::vector<std::int32_t>> groups;
  if (trim(text).empty()) return groups;
  std::vector<int> seen(names.size(), 0);
  for (const std::string& group : split(text, ';')) {
    std::vector<std::int32_t> members;
    for (const std::string& item : split(group, ',')) {
      std::int32_t idx = -1;
      for (std::size_t c = 0; c < names.size(); ++c)
        if (names[c] == item) idx = static_cast<std::int32_t>(c);
      if (idx < 0) {
        std::int32_t v = -1;
        const auto [end, ec] = std::from_chars(item.data(), item.data() + item.size(), v);
        if (!item.empty() && ec == std::errc() && end == item.data() + item.size() && v >= 0 &&
            v < static_cast<std::int32_t>(names.size()))
          idx = v;
      }
      if (idx < 0)
        throw UsageError(fmt::format("merge = \"{}\": \"{}\" is neither a class name nor a class index 0..{} of this "
                                     "recording",
                                     text, item, static_cast<std::int64_t>(names.size()) - 1));
      if (seen[static_cast<std::size_t>(idx)]++ != 0)
        throw UsageError(fmt::format("merge = \"{}\": class \"{}\" appears in more than one group", text, names[static_cast<std::size_t>(idx)]));
      members.push_back(idx);
    }
    if (members.size() < 2)
      throw UsageError(fmt::format("merge = \"{}\": the group \"{}\" names fewer than two classes", text, group));
    groups.push_back(members);
  }
  return groups;
}

CategoryDecodeResult decode_category(const Context& ctx, const PreprocessedData& data,
                                     const std::vector<std::int32_t>& image_class,
                                     const std::vector<std::string>& class_names, const CategoryDecodeOptions& o,
                                     const SpatialGrid* grid) {
  const auto S = static_cast<std::int64_t>(data.image_ids.size());
  const std::int64_t n_samples = 2 * S;
  const std::int64_t N = data.neurons_total;
  CategoryDecodeResult res;

  // Labels of the kept images (replicated), after merging and the optional shuffle.
  std::vector<std::int32_t> remap(class_names.size(), -1);
  for (const auto& g : o.merge) {
    const auto id = static_cast<std::int32_t>(res.class_names.size());
    std::string name;
    for (const std::int32_t c : g) {
      remap[static_cast<std::size_t>(c)] = id;
      name += (name.empty() ? "" : "+") + class_names[static_cast<std::size_t>(c)];
    }
    res.class_names.push_back(name);
  }
  for (std::size_t c = 0; c < class_names.size(); ++c)
    if (remap[c] < 0) {
      remap[c] = static_cast<std::int32_t>(res.class_names.size());
      res.class_names.push_back(class_names[c]);
    }
  const auto K = static_cast<std::int64_t>(res.class_names.size());
  std::vector<std::int32_t> label(static_cast<std::size_t>(S));
  for (std::int64_t i = 0; i < S; ++i) {
    const std::int32_t id = data.image_ids[static_cast<std::size_t>(i)];
    const std::int32_t c = id >= 0 && id < static_cast<std::int32_t>(image_class.size()) ? image_class[static_cast<std::size_t>(id)] : -1;
    if (c < 0 || c >= static_cast<std::int32_t>(class_names.size()))
      throw InputError(fmt::format("decode-category: image {} has class label {} (expected 0..{}, one per image in /classes/label)",
                                   id, c, static_cast<std::int64_t>(class_names.size()) - 1),
                       true);
    label[static_cast<std::size_t>(i)] = remap[static_cast<std::size_t>(c)];
  }
  if (o.shuffle_labels) {
    std::vector<std::int64_t> order(static_cast<std::size_t>(S));
    for (std::int64_t i = 0; i < S; ++i) order[static_cast<std::size_t>(i)] = i;
    shuffle(order, o.seed, 0xffffffffu);
    std::vector<std::int32_t> shuffled(label.size());
    for (std::int64_t i = 0; i < S; ++i) shuffled[static_cast<std::size_t>(i)] = label[static_cast<std::size_t>(order[static_cast<std::size_t>(i)])];
    label = shuffled;
  }
  std::vector<std::vector<std::int64_t>> images_of(static_cast<std::size_t>(K));
  for (std::int64_t i = 0; i < S; ++i) images_of[static_cast<std::size_t>(label[static_cast<std::size_t>(i)])].push_back(i);
  for (std::int64_t c = 0; c < K; ++c)
    if (images_of[static_cast<std::size_t>(c)].empty())
      throw InputError(fmt::format("decode-category: class \"{}\" (index {}) has no images among the {} preprocessed images; "
                                   "merge it into another class (merge = \"...\") or decode a recording that shows it",
                                   res.class_names[static_cast<std::size_t>(c)], c, S),
                       true);
  if (S < o.folds)
    throw InputError(fmt::format("decode-category: {} images cannot be split into {} folds", S, o.folds), true);

  // Stratified folds over images; within each class the first images of the shuffled order become the
  // validation images of the folds they do not test.
  res.image_fold.assign(static_cast<std::size_t>(S), 0);
  std::int64_t dealt = 0;
  for (std::int64_t c = 0; c < K; ++c) {
    auto& imgs = images_of[static_cast<std::size_t>(c)];
    shuffle(imgs, o.seed, static_cast<std::uint32_t>(c));
    for (const std::int64_t i : imgs) res.image_fold[static_cast<std::size_t>(i)] = static_cast<std::int32_t>(dealt++ % o.folds);
  }
  res.sample_class.resize(static_cast<std::size_t>(n_samples));
  for (std::int64_t g = 0; g < n_samples; ++g) res.sample_class[static_cast<std::size_t>(g)] = label[static_cast<std::size_t>(g % S)];

  // Neuron blocks -> sample blocks, float32 rows = samples.
  decode::SampleBlock block = decode::to_sample_block(ctx, data.repeats, N);
  // Gray-screen normalisation replaces the folds' z-scores: every neuron relative to its mean response to
  // gray screens, in units of the s.d. of those responses (before any binning on a grid).
  const bool gray = o.normalize == "gray";
  if (gray) {
    if (data.stats.gray_presentations < 2)
      throw InputError(fmt::format("{}: normalize = \"gray\" needs gray-screen presentations (stimulus id -1); the recording "
                                   "has {}",
                                   o.label, data.stats.gray_presentations),
                       true);
    block.x = decode::fixed_standardizer(decode::gather_rows(ctx, data.gray_mean), decode::gather_rows(ctx, data.gray_sd))(block.x);
  }
  GridShape shape;
  CnnOptions cnn;
  if (grid != nullptr) {  // sum each cell's neurons: samples x N -> samples x cells
    shape = GridShape{grid->planes, grid->rows, grid->columns};
    cnn.kind = grid->kind;
    cnn.channels = grid->channels;
    cnn.hidden = o.hidden;
    cnn.dropout = o.dropout;
    cnn.batchnorm = o.batchnorm;
    const torch::Tensor cells = torch::tensor(grid->cell, torch::kInt64);
    block.x = torch::zeros({block.count, shape.cells()}, torch::kFloat32).index_add_(1, cells, block.x);
    block.neurons = shape.cells();
  }
  const std::int64_t s_off = block.offset, s_n = block.count;
  std::string why;
  const torch::Device device = choose_device(ctx, o.device, &why);
  res.device_note = why;
  DataParallel dp(ctx, device);
  res.backend = dp.backend();
  std::vector<std::int64_t> predicted(static_cast<std::size_t>(n_samples), 0);
  decode::FoldHistories folds_done;

  for (std::int64_t f = 0; f < o.folds; ++f) {
    // Image roles in this fold: test, validation or train.
    std::vector<std::int64_t> train_count(static_cast<std::size_t>(K), 0);
    for (std::int64_t i = 0; i < S; ++i)
      if (res.image_fold[static_cast<std::size_t>(i)] != f) ++train_count[static_cast<std::size_t>(label[static_cast<std::size_t>(i)])];
    std::vector<std::int64_t> val_quota(static_cast<std::size_t>(K), 0);
    for (std::int64_t c = 0; c < K; ++c) {
      const std::int64_t n = train_count[static_cast<std::size_t>(c)];
      val_quota[static_cast<std::size_t>(c)] =
          std::max<std::int64_t>(0, std::min<std::int64_t>(std::llround(o.validation_fraction * static_cast<double>(n)), n - 1));
    }
    std::vector<char> role(static_cast<std::size_t>(S), 't');  // t train, v validation, x test
    std::vector<std::int64_t> taken(static_cast<std::size_t>(K), 0);
    for (std::int64_t c = 0; c < K; ++c)
      for (const std::int64_t i : images_of[static_cast<std::size_t>(c)]) {  // shuffled class order
        if (res.image_fold[static_cast<std::size_t>(i)] == f) {
          role[static_cast<std::size_t>(i)] = 'x';
        } else if (taken[static_cast<std::size_t>(c)] < val_quota[static_cast<std::size_t>(c)]) {
          role[static_cast<std::size_t>(i)] = 'v';
          ++taken[static_cast<std::size_t>(c)];
        }
      }
    auto is = [&](char r) { return [&role, r, S](std::int64_t g) { return role[static_cast<std::size_t>(g % S)] == r; }; };
    std::vector<std::int64_t> tr = local_rows(s_off, s_n, is('t')), va = local_rows(s_off, s_n, is('v')),
                              te = local_rows(s_off, s_n, is('x'));

    // z-score with the training samples' statistics.
    const decode::Standardizer zscore = gray ? decode::Standardizer{} : decode::fit_standardizer(ctx, block, tr);
    auto prepare = [&](const std::vector<std::int64_t>& rows) {
      const torch::Tensor x = rows_of(block.x, rows);
      return (gray ? x : zscore(x)).to(device);
    };
    auto targets = [&](const std::vector<std::int64_t>& rows) {
      std::vector<std::int64_t> y(rows.size());
      for (std::size_t k = 0; k < rows.size(); ++k) y[k] = res.sample_class[static_cast<std::size_t>(s_off + rows[k])];
      return torch::tensor(y, torch::kInt64).to(device);
    };

    // Class balance on the training samples (global, replicated counts).
    std::vector<std::int64_t> train_global;  // global sample indices of the training set, ascending
    for (std::int64_t g = 0; g < n_samples; ++g)
      if (role[static_cast<std::size_t>(g % S)] == 't') train_global.push_back(g);
    std::vector<std::int64_t> n_c(static_cast<std::size_t>(K), 0);
    for (const std::int64_t g : train_global) ++n_c[static_cast<std::size_t>(res.sample_class[static_cast<std::size_t>(g)])];
    std::int64_t present = 0, largest = 0;
    for (const std::int64_t v : n_c) {
      present += v > 0 ? 1 : 0;
      largest = std::max(largest, v);
    }
    ShardedSamples train;
    std::vector<std::int64_t> copies(train_global.size(), 1);
    if (o.balance == "oversample") {
      std::vector<std::int64_t> seen(static_cast<std::size_t>(K), 0);
      for (std::size_t k = 0; k < train_global.size(); ++k) {
        const auto c = static_cast<std::size_t>(res.sample_class[static_cast<std::size_t>(train_global[k])]);
        copies[k] = largest / n_c[c] + (seen[c]++ < largest % n_c[c] ? 1 : 0);
      }
    }
    {
      // Local training rows, each repeated `copies` times; the global order is ascending sample index.
      std::vector<std::int64_t> rows;
      std::int64_t before = 0;
      for (std::size_t k = 0; k < train_global.size(); ++k) {
        const std::int64_t g = train_global[k];
        if (g < s_off) before += copies[k];
        else if (g < s_off + s_n)
          for (std::int64_t c = 0; c < copies[k]; ++c) rows.push_back(g - s_off);
      }
      train.inputs = prepare(rows);
      train.targets = targets(rows);
      train.global_offset = before;
      for (const std::int64_t c : copies) train.global_count += c;
      if (o.balance == "weight") {
        for (std::size_t k = 0; k < train_global.size(); ++k) {
          const auto c = static_cast<std::size_t>(res.sample_class[static_cast<std::size_t>(train_global[k])]);
          const double w = static_cast<double>(train_global.size()) / (static_cast<double>(present) * static_cast<double>(n_c[c]));
          for (std::int64_t r = 0; r < copies[k]; ++r) train.weights.push_back(w);
        }
      }
    }
    ShardedSamples val;
    val.inputs = prepare(va);
    val.targets = targets(va);
    val.global_count = ctx.sum(static_cast<std::int64_t>(va.size()));
    std::vector<double> val_weight(static_cast<std::size_t>(K), 0.0);
    {
      std::vector<std::int64_t> vc(static_cast<std::size_t>(K), 0);
      std::int64_t vp = 0;
      for (std::int64_t g = 0; g < n_samples; ++g)
        if (role[static_cast<std::size_t>(g % S)] == 'v') ++vc[static_cast<std::size_t>(res.sample_class[static_cast<std::size_t>(g)])];
      for (const std::int64_t v : vc) vp += v > 0 ? 1 : 0;
      for (std::int64_t c = 0; c < K; ++c)
        if (vc[static_cast<std::size_t>(c)] > 0)
          val_weight[static_cast<std::size_t>(c)] = static_cast<double>(val.global_count) /
                                                     (static_cast<double>(vp) * static_cast<double>(vc[static_cast<std::size_t>(c)]));
    }

    std::function<torch::nn::Sequential()> build;
    if (grid != nullptr) build = [&] { return make_grid_cnn(shape, K, cnn); };
    torch::nn::Sequential net = decode::fold_network(o, f, N, K, device, build);
    res.parameters = parameter_count(*net);
    Model model = as_model(net);

    const TrainOptions to = decode::fold_train_options(o, f, o.label.c_str(), /*higher_is_better=*/true);
    const auto loss = [](const torch::Tensor& out, const torch::Tensor& y) {
      return torch::nn::functional::cross_entropy(out, y, torch::nn::functional::CrossEntropyFuncOptions().reduction(torch::kNone));
    };
    const torch::Tensor vw = torch::tensor(val_weight, torch::kFloat64).to(device);
    const auto metric = [vw](const torch::Tensor& out, const torch::Tensor& y) {
      return out.argmax(1).eq(y).to(torch::kFloat64) * vw.index_select(0, y);
    };
    const TrainHistory h = train_model(dp, model, train, val, loss, metric, to);
    if (h.interrupted) {
      res.interrupted = true;
      res.signal = h.signal;
      return res;
    }
    folds_done.add(h);

    if (!te.empty()) {
      const torch::Tensor out = predict(model, prepare(te), o.batch_size).argmax(1).to(torch::kCPU).contiguous();
      const auto* pr = out.data_ptr<std::int64_t>();
      for (std::size_t k = 0; k < te.size(); ++k) predicted[static_cast<std::size_t>(s_off + te[k])] = pr[k];
    }
  }
  ctx.allreduce_sum(predicted);
  res.predicted.assign(predicted.begin(), predicted.end());
  res.epochs = folds_done.epochs;
  res.best_epoch = folds_done.best_epoch;
  res.train_seconds = folds_done.seconds;
  res.samples_per_second = folds_done.samples_per_second();

  res.train_loss = decode::pad_curves(folds_done.loss, res.epochs);
  res.validation_metric = decode::pad_curves(folds_done.validation, res.epochs);

  // Metrics over all test predictions, and per fold.
  res.confusion.assign(static_cast<std::size_t>(K * K), 0);
  res.class_samples.assign(static_cast<std::size_t>(K), 0);
  std::int64_t correct = 0;
  for (std::int64_t g = 0; g < n_samples; ++g) {
    const auto t = res.sample_class[static_cast<std::size_t>(g)], p = res.predicted[static_cast<std::size_t>(g)];
    ++res.confusion[static_cast<std::size_t>(t * K + p)];
    ++res.class_samples[static_cast<std::size_t>(t)];
    correct += t == p ? 1 : 0;
  }
  res.accuracy = static_cast<double>(correct) / static_cast<double>(n_samples);
  res.recall.assign(static_cast<std::size_t>(K), 0.0);
  double rsum = 0;
  std::int64_t biggest = 0;
  for (std::int64_t c = 0; c < K; ++c) {
    res.recall[static_cast<std::size_t>(c)] = static_cast<double>(res.confusion[static_cast<std::size_t>(c * K + c)]) /
                                              static_cast<double>(res.class_samples[static_cast<std::size_t>(c)]);
    rsum += res.recall[static_cast<std::size_t>(c)];
    biggest = std::max(biggest, res.class_samples[static_cast<std::size_t>(c)]);
  }
  res.balanced_accuracy = rsum / static_cast<double>(K);
  res.chance_accuracy = static_cast<double>(biggest) / static_cast<double>(n_samples);
  res.chance_balanced = 1.0 / static_cast<double>(K);
  for (std::int64_t f = 0; f < o.folds; ++f) {
    std::vector<std::int64_t> hit(static_cast<std::size_t>(K), 0), tot(static_cast<std::size_t>(K), 0);
    std::int64_t c_all = 0, n_all = 0;
    for (std::int64_t g = 0; g < n_samples; ++g) {
      if (res.image_fold[static_cast<std::size_t>(g % S)] != f) continue;
      const auto t = static_cast<std::size_t>(res.sample_class[static_cast<std::size_t>(g)]);
      ++tot[t];
      ++n_all;
      if (res.predicted[static_cast<std::size_t>(g)] == res.sample_class[static_cast<std::size_t>(g)]) {
        ++hit[t];
        ++c_all;
      }
    }
    double bs = 0;
    std::int64_t kp = 0;
    for (std::int64_t c = 0; c < K; ++c)
      if (tot[static_cast<std::size_t>(c)] > 0) {
        bs += static_cast<double>(hit[static_cast<std::size_t>(c)]) / static_cast<double>(tot[static_cast<std::size_t>(c)]);
        ++kp;
      }
    res.fold_accuracy.push_back(n_all > 0 ? static_cast<double>(c_all) / static_cast<double>(n_all) : kNaN);
    res.fold_balanced.push_back(kp > 0 ? bs / static_cast<double>(kp) : kNaN);
  }
  return res;
}

}  // namespace popcode
