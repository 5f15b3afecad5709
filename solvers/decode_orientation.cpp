// Orientation / direction decoding with cross-validated MLP or linear decoders (see decode_orientation.hpp).
#include "solvers/decode_orientation.hpp"

#include <fmt/format.h>
#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <numbers>

#include "solvers/decode_common.hpp"
#include "solvers/nets/mlp.hpp"
#include "solvers/train/trainer.hpp"

namespace popcode {
namespace {

constexpr double kTwoPi = 2 * std::numbers::pi;
// target = angle regresses (psi - pi) / kAngleScale: psi uniform on [0, 2 pi) then has mean 0 and s.d. 1.
const double kAngleScale = std::numbers::pi / std::sqrt(3.0);

double wrap_pi(double a) {  // into [-pi, pi)
  return a - kTwoPi * std::floor((a + std::numbers::pi) / kTwoPi);
}

// Circle angle psi in [0, 2 pi) of theta (radians) with period P (radians).
double circle_angle(double theta, double period) {
  const double r = theta - period * std::floor(theta / period);
  return std::min(kTwoPi * r / period, std::nextafter(kTwoPi, 0.0));
}

// The decoded circle angles (float64, [0, 2 pi)) of a batch of network outputs.
torch::Tensor decoded_angle(const torch::Tensor& out, const std::string& target, std::int64_t bins) {
  torch::Tensor psi;
  if (target == "angle") {
    psi = out.select(1, 0).to(torch::kFloat64) * kAngleScale + std::numbers::pi;
  } else if (target == "cossin") {
    const torch::Tensor o = out.to(torch::kFloat64);
    psi = torch::atan2(o.select(1, 1), o.select(1, 0));
  } else {
    const torch::Tensor p = torch::softmax(out.to(torch::kFloat64), 1);
    const torch::Tensor centre = (torch::arange(bins, torch::TensorOptions().dtype(torch::kFloat64).device(out.device())) + 0.5) *
                                 (kTwoPi / static_cast<double>(bins));
    psi = torch::atan2((p * centre.sin()).sum(1), (p * centre.cos()).sum(1));
  }
  return torch::remainder(psi, kTwoPi);
}

}  // namespace

double angular_error_degrees(double a, double b, double period_degrees) {
  const double period = period_degrees * std::numbers::pi / 180.0;
  const double d = wrap_pi(kTwoPi * (a - b) / period);  // on the circle
  return std::abs(d) * period_degrees / kTwoPi;
}

OrientationDecodeResult decode_orientation(const Context& ctx, const Matrix& responses, std::int64_t N,
                                           const std::vector<double>& angle_in, const std::vector<std::int32_t>& group,
                                           const OrientationDecodeOptions& o) {
  const auto n_samples = static_cast<std::int64_t>(angle_in.size());
  const double period = o.period_degrees * std::numbers::pi / 180.0;
  const double deg_per_circle_rad = o.period_degrees / kTwoPi;  // degrees of theta per radian of psi
  OrientationDecodeResult res;

  // Groups (stimuli) in first-appearance order; folds deal the shuffled groups.
  std::map<std::int32_t, std::int64_t> group_index;
  std::vector<std::int64_t> sample_group(static_cast<std::size_t>(n_samples));
  for (std::int64_t g = 0; g < n_samples; ++g) {
    const auto it = group_index.emplace(group[static_cast<std::size_t>(g)], static_cast<std::int64_t>(group_index.size())).first;
    sample_group[static_cast<std::size_t>(g)] = it->second;
  }
  const auto G = static_cast<std::int64_t>(group_index.size());
  if (G < o.folds)
    throw InputError(fmt::format("decode-orientation: {} distinct stimuli cannot be split into {} folds", G, o.folds), true);
  std::vector<double> psi(static_cast<std::size_t>(n_samples));
  for (std::int64_t g = 0; g < n_samples; ++g) psi[static_cast<std::size_t>(g)] = circle_angle(angle_in[static_cast<std::size_t>(g)], period);
  if (o.shuffle_labels) {  // every sample of group j takes the angle of group order[j]'s first sample
    std::vector<double> first(static_cast<std::size_t>(G), -1);
    for (std::int64_t g = n_samples - 1; g >= 0; --g) first[static_cast<std::size_t>(sample_group[static_cast<std::size_t>(g)])] = psi[static_cast<std::size_t>(g)];
    std::vector<std::int64_t> order(static_cast<std::size_t>(G));
    for (std::int64_t j = 0; j < G; ++j) order[static_cast<std::size_t>(j)] = j;
    decode::shuffle(order, o.seed, 0xffffffffu);
    for (std::int64_t g = 0; g < n_samples; ++g)
      psi[static_cast<std::size_t>(g)] = first[static_cast<std::size_t>(order[static_cast<std::size_t>(sample_group[static_cast<std::size_t>(g)])])];
  }
  std::vector<std::int64_t> group_order(static_cast<std::size_t>(G));
  for (std::int64_t j = 0; j < G; ++j) group_order[static_cast<std::size_t>(j)] = j;
  decode::shuffle(group_order, o.seed, 0);
  std::vector<std::int32_t> group_fold(static_cast<std::size_t>(G));
  for (std::int64_t j = 0; j < G; ++j)
    group_fold[static_cast<std::size_t>(group_order[static_cast<std::size_t>(j)])] = static_cast<std::int32_t>(j % o.folds);
  res.fold.resize(static_cast<std::size_t>(n_samples));
  for (std::int64_t g = 0; g < n_samples; ++g)
    res.fold[static_cast<std::size_t>(g)] = group_fold[static_cast<std::size_t>(sample_group[static_cast<std::size_t>(g)])];

  const decode::SampleBlock block = decode::to_sample_block(ctx, responses, N);
  const std::int64_t s_off = block.offset, s_n = block.count;
  std::string why;
  const torch::Device device = choose_device(ctx, o.device, &why);
  res.device_note = why;
  DataParallel dp(ctx, device);
  res.backend = dp.backend();
  const std::int64_t outputs = o.target == "angle" ? 1 : o.target == "cossin" ? 2 : o.bins;
  std::vector<double> predicted(static_cast<std::size_t>(n_samples), 0.0);
  decode::FoldHistories folds_done;

  for (std::int64_t f = 0; f < o.folds; ++f) {
    // Roles: test ('x') = this fold; validation ('v') = the first training groups in the shuffled order.
    std::int64_t train_groups = 0;
    for (std::int64_t j = 0; j < G; ++j) train_groups += group_fold[static_cast<std::size_t>(j)] != f ? 1 : 0;
    const std::int64_t quota = std::max<std::int64_t>(
        0, std::min<std::int64_t>(std::llround(o.validation_fraction * static_cast<double>(train_groups)), train_groups - 1));
    std::vector<char> role(static_cast<std::size_t>(G), 't');
    std::int64_t taken = 0;
    for (const std::int64_t j : group_order) {
      if (group_fold[static_cast<std::size_t>(j)] == f) role[static_cast<std::size_t>(j)] = 'x';
      else if (taken < quota) {
        role[static_cast<std::size_t>(j)] = 'v';
        ++taken;
      }
    }
    auto is = [&](char r) {
      return [&role, &sample_group, r](std::int64_t g) { return role[static_cast<std::size_t>(sample_group[static_cast<std::size_t>(g)])] == r; };
    };
    const std::vector<std::int64_t> tr = decode::local_rows(s_off, s_n, is('t')), va = decode::local_rows(s_off, s_n, is('v')),
                                    te = decode::local_rows(s_off, s_n, is('x'));
    const decode::Standardizer zscore = decode::fit_standardizer(ctx, block, tr);
    auto prepare = [&](const std::vector<std::int64_t>& rows) { return zscore(decode::rows_of(block.x, rows)).to(device); };
    auto circle = [&](const std::vector<std::int64_t>& rows) {
      std::vector<double> y(rows.size());
      for (std::size_t k = 0; k < rows.size(); ++k) y[k] = psi[static_cast<std::size_t>(s_off + rows[k])];
      return torch::tensor(y, torch::kFloat64);
    };
    auto targets = [&](const std::vector<std::int64_t>& rows) {
      const torch::Tensor y = circle(rows);
      if (o.target == "angle") return ((y - std::numbers::pi) / kAngleScale).to(torch::kFloat32).unsqueeze(1).to(device);
      if (o.target == "cossin") return torch::stack({y.cos(), y.sin()}, 1).to(torch::kFloat32).to(device);
      return (y * (static_cast<double>(o.bins) / kTwoPi)).floor().clamp(0, static_cast<double>(o.bins - 1)).to(torch::kInt64).to(device);
    };

    ShardedSamples train;
    train.inputs = prepare(tr);
    train.targets = targets(tr);
    train.global_count = ctx.sum(static_cast<std::int64_t>(tr.size()));
    std::int64_t before = 0;
    for (std::int64_t g = 0; g < s_off; ++g) before += is('t')(g) ? 1 : 0;
    train.global_offset = before;
    ShardedSamples val;
    val.inputs = prepare(va);
    val.targets = circle(va).unsqueeze(1).to(device);  // the metric needs the angle itself, whatever the target
    val.global_count = ctx.sum(static_cast<std::int64_t>(va.size()));

    torch::nn::Sequential net = decode::fold_network(o, f, N, outputs, device);
    res.parameters = parameter_count(*net);
    Model model = as_model(net);
    const TrainOptions to = decode::fold_train_options(o, f, "decode-orientation", /*higher_is_better=*/false);
    const std::string target = o.target;
    const SampleLoss loss = [target](const torch::Tensor& out, const torch::Tensor& y) {
      if (target == "bins")
        return torch::nn::functional::cross_entropy(out, y, torch::nn::functional::CrossEntropyFuncOptions().reduction(torch::kNone));
      return (out - y).pow(2).sum(1);
    };
    const std::int64_t bins = o.bins;
    const SampleLoss metric = [target, bins, deg_per_circle_rad](const torch::Tensor& out, const torch::Tensor& y) {
      const torch::Tensor d = decoded_angle(out, target, bins) - y.select(1, 0).to(torch::kFloat64);
      return torch::remainder(d + std::numbers::pi, kTwoPi).sub(std::numbers::pi).abs() * deg_per_circle_rad;
    };
    const TrainHistory h = train_model(dp, model, train, val, loss, metric, to);
    if (h.interrupted) {
      res.interrupted = true;
      res.signal = h.signal;
      return res;
    }
    folds_done.add(h);
    if (!te.empty()) {
      const torch::Tensor est = decoded_angle(predict(model, prepare(te), o.batch_size), o.target, o.bins).to(torch::kCPU).contiguous();
      const auto* pr = est.data_ptr<double>();
      for (std::size_t k = 0; k < te.size(); ++k) predicted[static_cast<std::size_t>(s_off + te[k])] = pr[k];
    }
  }
  ctx.allreduce_sum(predicted);
  res.epochs = folds_done.epochs;
  res.best_epoch = folds_done.best_epoch;
  res.train_seconds = folds_done.seconds;
  res.samples_per_second = folds_done.samples_per_second();
  res.train_loss = decode::pad_curves(folds_done.loss, res.epochs);
  res.validation_error = decode::pad_curves(folds_done.validation, res.epochs);

  // Errors against the (possibly shuffled) target angles; estimates reported as theta in [0, P).
  res.predicted.resize(static_cast<std::size_t>(n_samples));
  res.error_degrees.resize(static_cast<std::size_t>(n_samples));
  for (std::int64_t g = 0; g < n_samples; ++g) {
    const double est = predicted[static_cast<std::size_t>(g)];
    res.predicted[static_cast<std::size_t>(g)] = est * period / kTwoPi;
    res.error_degrees[static_cast<std::size_t>(g)] =
        angular_error_degrees(res.predicted[static_cast<std::size_t>(g)], psi[static_cast<std::size_t>(g)] * period / kTwoPi, o.period_degrees);
  }
  auto median = [](std::vector<double> v) {
    if (v.empty()) return std::numeric_limits<double>::quiet_NaN();
    std::sort(v.begin(), v.end());
    const std::size_t h = v.size() / 2;
    return v.size() % 2 == 1 ? v[h] : 0.5 * (v[h - 1] + v[h]);
  };
  res.median_error = median(res.error_degrees);
  double total = 0;
  for (const double e : res.error_degrees) total += e;
  res.mean_error = total / static_cast<double>(n_samples);
  res.chance_median_error = o.period_degrees / 4;
  for (std::int64_t f = 0; f < o.folds; ++f) {
    std::vector<double> part;
    for (std::int64_t g = 0; g < n_samples; ++g)
      if (res.fold[static_cast<std::size_t>(g)] == f) part.push_back(res.error_degrees[static_cast<std::size_t>(g)]);
    res.fold_median_error.push_back(median(part));
  }
  return res;
}

}  // namespace popcode
