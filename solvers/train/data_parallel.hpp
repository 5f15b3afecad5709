#pragma once
// Data-parallel synchronisation of a libtorch model over the ranks of a Context.
//
// Every rank holds a full replica of the model. Before training, rank 0's parameters and buffers are
// broadcast so the replicas start identical. After each local backward pass, the gradients are flattened into
// buckets of at most `bucket_bytes`, each bucket is summed over ranks in one collective and copied back:
//   - CPU tensors: MPI_Allreduce (MPI_FLOAT / MPI_DOUBLE, MPI_SUM) on the Context's communicator;
//   - CUDA tensors (a CUDA build of libtorch with POPCODE_WITH_NCCL): ncclAllReduce on a communicator
//     bootstrapped from MPI (ncclGetUniqueId on rank 0, MPI_Bcast, ncclCommInitRank), one GPU per rank chosen
//     by the node-local rank.
// The trainer scales each rank's loss so that a plain sum over ranks is the gradient of the global batch
// mean (solvers/train/trainer.hpp), so the reducer sums and never divides.
//
// Every replica applies the same summed gradient with the same optimizer, so replicas stay bitwise equal;
// `checksum` hashes the parameter bytes and compares ranks, and a mismatch is an internal error naming the
// step (it would mean a non-deterministic collective or a rank that skipped a step).
//
// Memory: one bucket (<= bucket_bytes, default 25 MiB) beside the model and its gradients.
#include <torch/torch.h>

#include <cstdint>
#include <string>
#include <vector>

#include "src/context.hpp"

namespace popcode {

class DataParallel {
 public:
  // Collective. `device` is where the model lives (CPU, or the CUDA device this rank uses).
  DataParallel(const Context& ctx, torch::Device device, std::int64_t bucket_bytes = 25 << 20);
  ~DataParallel();
  DataParallel(const DataParallel&) = delete;
  DataParallel& operator=(const DataParallel&) = delete;

  // Collective: rank 0's parameters and buffers on every rank.
  void broadcast(torch::nn::Module& model) const;
  // Collective: every parameter's gradient replaced by its sum over ranks (a missing gradient counts as 0).
  void allreduce_gradients(torch::nn::Module& model) const;
  // Collective: every floating-point buffer (batchnorm running statistics) replaced by its mean over ranks,
  // and every integer buffer (batch counters) by its maximum, so replicas stay equal when batch statistics
  // are computed on each rank's local batch.
  void average_buffers(torch::nn::Module& model) const;
  // Collective: sums `values` over ranks in place (float32 or float64, CPU or CUDA).
  void allreduce_sum(torch::Tensor& values) const;
  // Collective: FNV-1a hash of every parameter's and buffer's bytes on this rank; throws InternalError when
  // ranks disagree, naming `where`.
  std::uint64_t checksum(torch::nn::Module& model, const std::string& where) const;

  // "MPI_Allreduce on CPU" or "NCCL on cuda:N".
  std::string backend() const;
  const Context& context() const { return ctx_; }

 private:
  void reduce_bucket(torch::Tensor& flat) const;
  void broadcast_tensor(torch::Tensor& t) const;

  const Context& ctx_;
  torch::Device device_;
  std::int64_t bucket_bytes_;
  void* nccl_ = nullptr;  // ncclComm_t when the NCCL path is in use
};

// Collective. The torch device this rank should use: "cpu" forces the CPU; "auto" takes CUDA device
// (node-local rank mod device count) when libtorch was built with CUDA and every rank sees a GPU, else the
// CPU on every rank; "cuda" requires a GPU on every rank (UsageError on all ranks otherwise). `why` receives
// a sentence for the log.
torch::Device choose_device(const Context& ctx, const std::string& request, std::string* why);

}  // namespace popcode
