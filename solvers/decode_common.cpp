// Shared decoder machinery (see decode_common.hpp).
#include "solvers/decode_common.hpp"

#include <algorithm>
#include <cmath>
#include <limits>

#include "partition/redistribute.hpp"
#include "src/rng.hpp"

namespace popcode::decode {

void shuffle(std::vector<std::int64_t>& v, std::uint64_t seed, std::uint32_t tag) {
  const CounterRng rng(seed);
  for (std::int64_t i = static_cast<std::int64_t>(v.size()) - 1; i > 0; --i) {
    const auto j = static_cast<std::size_t>(rng.below(static_cast<std::uint64_t>(i + 1), Stream::folds, tag,
                                                      static_cast<std::uint32_t>(i)));
    std::swap(v[static_cast<std::size_t>(i)], v[j]);
  }
}

std::vector<std::int64_t> local_rows(std::int64_t offset, std::int64_t count, const std::function<bool(std::int64_t)>& pick) {
  std::vector<std::int64_t> rows;
  for (std::int64_t j = 0; j < count; ++j)
    if (pick(offset + j)) rows.push_back(j);
  return rows;
}

torch::Tensor rows_of(const torch::Tensor& t, const std::vector<std::int64_t>& rows) {
  return t.index_select(0, torch::tensor(rows, torch::kInt64).to(t.device()));
}

SampleBlock to_sample_block(const Context& ctx, const Matrix& neuron_block, std::int64_t neurons_total) {
  SampleBlock b;
  b.samples = neuron_block.cols();
  b.neurons = neurons_total;
  const BlockLayout samples(b.samples, ctx.size());
  std::vector<std::int64_t> counts(static_cast<std::size_t>(ctx.size()));
  const std::int64_t mine = neuron_block.rows();
  mpi_check(MPI_Allgather(&mine, 1, MPI_INT64_T, counts.data(), 1, MPI_INT64_T, ctx.comm()), "MPI_Allgather(neuron counts)");
  const Matrix block = neuron_to_sample_blocks(ctx, neuron_block, CountLayout(counts), samples);
  // Column-major N x s_n is row-major s_n x N: one sample per row.
  b.x = torch::from_blob(const_cast<double*>(block.data()), {block.cols(), block.rows()}, torch::kFloat64).to(torch::kFloat32);
  b.offset = samples.offset(ctx.rank());
  b.count = samples.count(ctx.rank());
  return b;
}

Standardizer fit_standardizer(const Context& ctx, const SampleBlock& block, const std::vector<std::int64_t>& train_rows) {
  const std::int64_t N = block.neurons;
  const std::int64_t n_train = ctx.sum(static_cast<std::int64_t>(train_rows.size()));
  std::vector<double> mu(static_cast<std::size_t>(N), 0.0), var(static_cast<std::size_t>(N), 0.0);
  const torch::Tensor mt = torch::from_blob(mu.data(), {N}, torch::kFloat64);
  const torch::Tensor vt = torch::from_blob(var.data(), {N}, torch::kFloat64);
  auto over_chunks = [&](auto&& fn) {
    for (std::size_t b = 0; b < train_rows.size(); b += 256) {
      const std::vector<std::int64_t> part(train_rows.begin() + static_cast<std::ptrdiff_t>(b),
                                           train_rows.begin() + static_cast<std::ptrdiff_t>(std::min(train_rows.size(), b + 256)));
      fn(rows_of(block.x, part).to(torch::kFloat64));
    }
  };
  over_chunks([&](const torch::Tensor& c) { mt.add_(c.sum(0)); });
  ctx.allreduce_sum(mu);
  for (double& m : mu) m /= static_cast<double>(std::max<std::int64_t>(n_train, 1));
  over_chunks([&](const torch::Tensor& c) { vt.add_((c - mt).pow(2).sum(0)); });
  ctx.allreduce_sum(var);
  std::vector<double> inv(static_cast<std::size_t>(N));
  for (std::int64_t k = 0; k < N; ++k) {
    const double sd = n_train > 0 ? std::sqrt(var[static_cast<std::size_t>(k)] / static_cast<double>(n_train)) : 0.0;
    inv[static_cast<std::size_t>(k)] = sd > 0 ? 1.0 / sd : 0.0;
  }
  Standardizer z;
  z.mean = torch::from_blob(mu.data(), {1, N}, torch::kFloat64).to(torch::kFloat32);
  z.inv_sd = torch::from_blob(inv.data(), {1, N}, torch::kFloat64).to(torch::kFloat32);
  return z;
}

void FoldHistories::add(const TrainHistory& h) {
  loss.push_back(h.epoch_loss);
  validation.push_back(h.validation);
  best_epoch.push_back(h.best_epoch);
  epochs = std::max(epochs, h.epochs_done);
  seconds += h.seconds;
  samples += h.samples_per_second * h.seconds;
}

Standardizer fixed_standardizer(const std::vector<double>& mean, const std::vector<double>& sd) {
  std::vector<double> inv(sd.size());
  for (std::size_t k = 0; k < sd.size(); ++k) inv[k] = sd[k] > 0 ? 1.0 / sd[k] : 0.0;
  const auto n = static_cast<std::int64_t>(mean.size());
  Standardizer z;
  z.mean = torch::tensor(mean, torch::kFloat64).reshape({1, n}).to(torch::kFloat32);
  z.inv_sd = torch::tensor(inv, torch::kFloat64).reshape({1, n}).to(torch::kFloat32);
  return z;
}

namespace {
template <class T>
std::vector<T> gather_rows_as(const Context& ctx, const std::vector<T>& local, MPI_Datatype type) {
  std::vector<int> counts(static_cast<std::size_t>(ctx.size())), offsets(static_cast<std::size_t>(ctx.size()), 0);
  const int mine = static_cast<int>(local.size());
  mpi_check(MPI_Allgather(&mine, 1, MPI_INT, counts.data(), 1, MPI_INT, ctx.comm()), "MPI_Allgather(row counts)");
  for (std::size_t r = 1; r < counts.size(); ++r) offsets[r] = offsets[r - 1] + counts[r - 1];
  std::vector<T> all(static_cast<std::size_t>(offsets.back() + counts.back()));
  mpi_check(MPI_Allgatherv(local.data(), mine, type, all.data(), counts.data(), offsets.data(), type, ctx.comm()),
            "MPI_Allgatherv(rows)");
  return all;
}
}  // namespace

std::vector<double> gather_rows(const Context& ctx, const std::vector<double>& local) { return gather_rows_as(ctx, local, MPI_DOUBLE); }
std::vector<std::int64_t> gather_rows(const Context& ctx, const std::vector<std::int64_t>& local) {
  return gather_rows_as(ctx, local, MPI_INT64_T);
}

std::vector<double> pad_curves(const std::vector<std::vector<double>>& curves, std::int64_t epochs) {
  std::vector<double> out(curves.size() * static_cast<std::size_t>(epochs), std::numeric_limits<double>::quiet_NaN());
  for (std::size_t f = 0; f < curves.size(); ++f)
    for (std::size_t e = 0; e < curves[f].size() && e < static_cast<std::size_t>(epochs); ++e)
      out[f * static_cast<std::size_t>(epochs) + e] = curves[f][e];
  return out;
}

}  // namespace popcode::decode
