#include "partition/redistribute.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <climits>
#include <vector>

#include "src/timing.hpp"

namespace popcode {
namespace {

template <class NeuronLayout>
void check_layouts(const Context& ctx, const NeuronLayout& neurons, const BlockLayout& samples) {
  if (neurons.parts() != ctx.size() || samples.parts() != ctx.size()) {
    throw InternalError(fmt::format("redistribute: layouts over {} and {} parts on a communicator of {} ranks",
                                    neurons.parts(), samples.parts(), ctx.size()));
  }
}

int checked_count(std::int64_t n) {
  if (n > INT_MAX) {
    throw InternalError(fmt::format(
        "redistribute: one message of {} values exceeds MPI's int count limit; run with more ranks", n));
  }
  return static_cast<int>(n);
}

struct Plan {
  std::vector<int> send_counts, send_displs, recv_counts, recv_displs;
  std::int64_t send_total = 0, recv_total = 0;
};

// Counts for the neuron -> sample direction; the reverse direction swaps send and receive.
template <class NeuronLayout>
Plan neuron_to_sample_plan(const Context& ctx, const NeuronLayout& neurons, const BlockLayout& samples) {
  const int p = ctx.size();
  Plan plan;
  plan.send_counts.resize(p);
  plan.send_displs.resize(p);
  plan.recv_counts.resize(p);
  plan.recv_displs.resize(p);
  const std::int64_t my_neurons = neurons.count(ctx.rank());
  const std::int64_t my_samples = samples.count(ctx.rank());
  for (int q = 0; q < p; ++q) {
    plan.send_counts[q] = checked_count(my_neurons * samples.count(q));
    plan.recv_counts[q] = checked_count(neurons.count(q) * my_samples);
  }
  std::int64_t s = 0, r = 0;
  for (int q = 0; q < p; ++q) {
    plan.send_displs[q] = checked_count(s);
    plan.recv_displs[q] = checked_count(r);
    s += plan.send_counts[q];
    r += plan.recv_counts[q];
  }
  plan.send_total = s;
  plan.recv_total = r;
  return plan;
}

template <class NeuronLayout>
Matrix to_samples(const Context& ctx, const Matrix& local, const NeuronLayout& neurons,
                               const BlockLayout& samples) {
  check_layouts(ctx, neurons, samples);
  const int me = ctx.rank();
  if (local.rows() != neurons.count(me) || local.cols() != samples.size()) {
    throw InternalError(fmt::format("neuron_to_sample_blocks: local block is {}x{}, expected {}x{}", local.rows(),
                                    local.cols(), neurons.count(me), samples.size()));
  }
  const Plan plan = neuron_to_sample_plan(ctx, neurons, samples);
  // Columns (samples) of part q are consecutive, so the send buffer is `local` itself.
  std::vector<double> recv(static_cast<std::size_t>(plan.recv_total));
  {
    ScopedPhase phase(Phase::comm);
    mpi_check(MPI_Alltoallv(local.data(), plan.send_counts.data(), plan.send_displs.data(), MPI_DOUBLE, recv.data(),
                            plan.recv_counts.data(), plan.recv_displs.data(), MPI_DOUBLE, ctx.comm()),
              "MPI_Alltoallv(neuron->sample)");
  }
  const std::int64_t my_samples = samples.count(me);
  Matrix out(neurons.size(), my_samples);
  for (int q = 0; q < ctx.size(); ++q) {
    const std::int64_t nq = neurons.count(q);
    const double* src = recv.data() + plan.recv_displs[q];
    for (std::int64_t j = 0; j < my_samples; ++j) {
      std::copy_n(src + j * nq, nq, &out(neurons.offset(q), j));
    }
  }
  return out;
}

template <class NeuronLayout>
Matrix to_neurons(const Context& ctx, const Matrix& local, const NeuronLayout& neurons,
                               const BlockLayout& samples) {
  check_layouts(ctx, neurons, samples);
  const int me = ctx.rank();
  if (local.rows() != neurons.size() || local.cols() != samples.count(me)) {
    throw InternalError(fmt::format("sample_to_neuron_blocks: local block is {}x{}, expected {}x{}", local.rows(),
                                    local.cols(), neurons.size(), samples.count(me)));
  }
  // Reverse of the neuron -> sample plan: what that direction receives, this one sends.
  const Plan plan = neuron_to_sample_plan(ctx, neurons, samples);
  const std::int64_t my_samples = samples.count(me);
  std::vector<double> send(static_cast<std::size_t>(plan.recv_total));
  for (int q = 0; q < ctx.size(); ++q) {
    const std::int64_t nq = neurons.count(q);
    double* dst = send.data() + plan.recv_displs[q];
    for (std::int64_t j = 0; j < my_samples; ++j) {
      std::copy_n(local.col(j).data() + neurons.offset(q), nq, dst + j * nq);
    }
  }
  Matrix out(neurons.count(me), samples.size());
  {
    ScopedPhase phase(Phase::comm);
    mpi_check(MPI_Alltoallv(send.data(), plan.recv_counts.data(), plan.recv_displs.data(), MPI_DOUBLE, out.data(),
                            plan.send_counts.data(), plan.send_displs.data(), MPI_DOUBLE, ctx.comm()),
              "MPI_Alltoallv(sample->neuron)");
  }
  return out;
}

}  // namespace

Matrix neuron_to_sample_blocks(const Context& ctx, const Matrix& local, const BlockLayout& neurons,
                               const BlockLayout& samples) {
  return to_samples(ctx, local, neurons, samples);
}
Matrix neuron_to_sample_blocks(const Context& ctx, const Matrix& local, const CountLayout& neurons,
                               const BlockLayout& samples) {
  return to_samples(ctx, local, neurons, samples);
}
Matrix sample_to_neuron_blocks(const Context& ctx, const Matrix& local, const BlockLayout& neurons,
                               const BlockLayout& samples) {
  return to_neurons(ctx, local, neurons, samples);
}
Matrix sample_to_neuron_blocks(const Context& ctx, const Matrix& local, const CountLayout& neurons,
                               const BlockLayout& samples) {
  return to_neurons(ctx, local, neurons, samples);
}

}  // namespace popcode
