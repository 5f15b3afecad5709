// Data-parallel gradient reduction (see data_parallel.hpp for the contract).
#include "solvers/train/data_parallel.hpp"

#include <fmt/format.h>
#include <mpi.h>

#include <algorithm>
#include <cstring>

#include "src/blas_threads.hpp"

#if POPCODE_WITH_NCCL
#include <cuda_runtime.h>
#include <nccl.h>
#endif

namespace popcode {
namespace {

MPI_Datatype mpi_type(const torch::Tensor& t) {
  if (t.scalar_type() == torch::kFloat32) return MPI_FLOAT;
  if (t.scalar_type() == torch::kFloat64) return MPI_DOUBLE;
  throw InternalError(fmt::format("data-parallel reduction supports float32 and float64 tensors, not {}",
                                  std::string(c10::toString(t.scalar_type()))));
}

int node_local_rank(const Context& ctx) {
  MPI_Comm node;
  mpi_check(MPI_Comm_split_type(ctx.comm(), MPI_COMM_TYPE_SHARED, ctx.rank(), MPI_INFO_NULL, &node),
            "MPI_Comm_split_type");
  int r = 0;
  MPI_Comm_rank(node, &r);
  MPI_Comm_free(&node);
  return r;
}

#if POPCODE_WITH_NCCL
void nccl_check(ncclResult_t rc, const char* call) {
  if (rc != ncclSuccess) throw InternalError(fmt::format("{} failed: {}", call, ncclGetErrorString(rc)));
}
void cuda_check(cudaError_t rc, const char* call) {
  if (rc != cudaSuccess) throw InternalError(fmt::format("{} failed: {}", call, cudaGetErrorString(rc)));
}
#endif

}  // namespace

torch::Device choose_device(const Context& ctx, const std::string& request, std::string* why) {
  const int local = node_local_rank(ctx);
  const bool have_cuda = torch::cuda::is_available();
  const std::int64_t count = have_cuda ? static_cast<std::int64_t>(torch::cuda::device_count()) : 0;
  // Agreed by every rank (nodes may differ), before any rank returns.
  ctx.agree(request == "cuda" && count == 0,
            "device = \"cuda\" was requested but this libtorch build sees no CUDA device (a CPU-only libtorch, or no "
            "GPU on this node); use device = \"auto\" or \"cpu\"",
            ExitCode::usage);
  // "auto" uses GPUs only when every rank has one: the gradient reduction cannot mix NCCL and MPI ranks.
  const bool some_rank_without = ctx.any(count == 0);
  if (request == "cpu" || some_rank_without) {
    if (why != nullptr)
      *why = request == "cpu" ? "runs on the CPU (device = \"cpu\")"
             : count == 0     ? "runs on the CPU: no CUDA device visible to this libtorch build"
                              : "runs on the CPU: another rank sees no CUDA device";
    return torch::Device(torch::kCPU);
  }
  const auto index = static_cast<c10::DeviceIndex>(local % count);
  if (why != nullptr) *why = fmt::format("runs on cuda:{} (node-local rank {}, {} devices)", index, local, count);
  return torch::Device(torch::kCUDA, index);
}

DataParallel::DataParallel(const Context& ctx, torch::Device device, std::int64_t bucket_bytes)
    : ctx_(ctx), device_(device), bucket_bytes_(bucket_bytes) {
  // libtorch's own thread pool follows popcode's BLAS setting (one thread per rank unless
  // POPCODE_BLAS_THREADS says otherwise), so ranks placed one per core do not fight over cores.
  torch::set_num_threads(std::max(1, configure_blas_threads()));
  if (!device_.is_cuda()) return;
#if POPCODE_WITH_NCCL
  ncclUniqueId id;
  if (ctx_.root()) nccl_check(ncclGetUniqueId(&id), "ncclGetUniqueId");
  mpi_check(MPI_Bcast(&id, sizeof id, MPI_BYTE, 0, ctx_.comm()), "MPI_Bcast(ncclUniqueId)");
  cuda_check(cudaSetDevice(device_.index()), "cudaSetDevice");
  ncclComm_t comm;
  nccl_check(ncclCommInitRank(&comm, ctx_.size(), id, ctx_.rank()), "ncclCommInitRank");
  nccl_ = comm;
#else
  throw UsageError("the model is on a CUDA device but popcode was built without NCCL (POPCODE_WITH_NCCL=OFF), "
                   "so gradients cannot be reduced on the GPU");
#endif
}

DataParallel::~DataParallel() {
#if POPCODE_WITH_NCCL
  if (nccl_ != nullptr) ncclCommDestroy(static_cast<ncclComm_t>(nccl_));
#endif
}

std::string DataParallel::backend() const {
  if (nccl_ != nullptr) return fmt::format("NCCL on cuda:{}", device_.index());
  return "MPI_Allreduce on CPU";
}

void DataParallel::reduce_bucket(torch::Tensor& flat) const {
  if (ctx_.size() == 1 || flat.numel() == 0) return;
#if POPCODE_WITH_NCCL
  if (flat.is_cuda()) {
    const ncclDataType_t type = flat.scalar_type() == torch::kFloat64 ? ncclFloat64 : ncclFloat32;
    // The default (legacy) stream orders the collective after the backward kernels of this thread.
    nccl_check(ncclAllReduce(flat.data_ptr(), flat.data_ptr(), static_cast<std::size_t>(flat.numel()), type, ncclSum,
                             static_cast<ncclComm_t>(nccl_), cudaStreamLegacy),
               "ncclAllReduce");
    cuda_check(cudaStreamSynchronize(cudaStreamLegacy), "cudaStreamSynchronize");
    return;
  }
#endif
  if (flat.is_cuda()) throw InternalError("a CUDA gradient reached the MPI reduction (no NCCL communicator)");
  mpi_check(MPI_Allreduce(MPI_IN_PLACE, flat.data_ptr(), static_cast<int>(flat.numel()), mpi_type(flat), MPI_SUM,
                          ctx_.comm()),
            "MPI_Allreduce(gradients)");
}

void DataParallel::allreduce_sum(torch::Tensor& values) const {
  torch::Tensor flat = values.contiguous();
  reduce_bucket(flat);
  if (!flat.is_same(values)) values.copy_(flat);
}

void DataParallel::allreduce_gradients(torch::nn::Module& model) const {
  torch::NoGradGuard no_grad;
  std::vector<torch::Tensor> params;
  for (auto& p : model.parameters())
    if (p.requires_grad()) params.push_back(p);
  std::size_t i = 0;
  while (i < params.size()) {
    // One bucket: consecutive parameters of one dtype up to bucket_bytes (a larger parameter alone).
    std::vector<torch::Tensor> grads;
    std::int64_t bytes = 0;
    const auto dtype = params[i].scalar_type();
    std::size_t j = i;
    for (; j < params.size() && params[j].scalar_type() == dtype; ++j) {
      const std::int64_t b = params[j].numel() * static_cast<std::int64_t>(params[j].element_size());
      if (!grads.empty() && bytes + b > bucket_bytes_) break;
      torch::Tensor g = params[j].grad();
      if (!g.defined()) {
        params[j].mutable_grad() = torch::zeros_like(params[j]);
        g = params[j].grad();
      }
      grads.push_back(g.reshape({-1}));
      bytes += b;
    }
    torch::Tensor flat = torch::cat(grads);
    reduce_bucket(flat);
    std::int64_t at = 0;
    for (std::size_t k = i; k < j; ++k) {
      const std::int64_t n = params[k].numel();
      params[k].mutable_grad().view({-1}).copy_(flat.slice(0, at, at + n));
      at += n;
    }
    i = j;
  }
}

void DataParallel::broadcast_tensor(torch::Tensor& t) const {
  if (ctx_.size() == 1 || t.numel() == 0) return;
  torch::Tensor host = t.is_cuda() ? t.to(torch::kCPU).contiguous() : t.contiguous();
  mpi_check(MPI_Bcast(host.data_ptr(), static_cast<int>(host.numel() * static_cast<std::int64_t>(host.element_size())),
                      MPI_BYTE, 0, ctx_.comm()),
            "MPI_Bcast(parameters)");
  if (!host.is_same(t)) t.copy_(host);
}

void DataParallel::broadcast(torch::nn::Module& model) const {
  torch::NoGradGuard no_grad;
  for (auto& p : model.parameters()) broadcast_tensor(p);
  for (auto& b : model.buffers()) broadcast_tensor(b);
}

void DataParallel::average_buffers(torch::nn::Module& model) const {
  if (ctx_.size() == 1) return;
  torch::NoGradGuard no_grad;
  for (auto& b : model.buffers()) {
    if (!b.is_floating_point()) {
      // Counters (num_batches_tracked) do not advance on a rank that had no sample in a step: take the
      // largest, the count of steps with any sample.
      torch::Tensor host = b.to(torch::kCPU, torch::kInt64).contiguous();
      mpi_check(MPI_Allreduce(MPI_IN_PLACE, host.data_ptr(), static_cast<int>(host.numel()), MPI_INT64_T, MPI_MAX,
                              ctx_.comm()),
                "MPI_Allreduce(buffer counters)");
      b.copy_(host);
      continue;
    }
    torch::Tensor flat = b.contiguous();
    reduce_bucket(flat);
    flat.div_(static_cast<double>(ctx_.size()));
    if (!flat.is_same(b)) b.copy_(flat);
  }
}

std::uint64_t DataParallel::checksum(torch::nn::Module& model, const std::string& where) const {
  std::uint64_t h = 1469598103934665603ULL;
  auto mix = [&h](const torch::Tensor& t) {
    const torch::Tensor c = t.detach().to(torch::kCPU).contiguous();
    const auto* bytes = static_cast<const unsigned char*>(c.data_ptr());
    const auto n = static_cast<std::size_t>(c.numel()) * c.element_size();
    for (std::size_t i = 0; i < n; ++i) h = (h ^ bytes[i]) * 1099511628211ULL;
  };
  for (auto& p : model.parameters()) mix(p);
  for (auto& b : model.buffers()) mix(b);
  std::uint64_t lo = h, hi = h;
  mpi_check(MPI_Allreduce(MPI_IN_PLACE, &lo, 1, MPI_UINT64_T, MPI_MIN, ctx_.comm()), "MPI_Allreduce(checksum)");
  mpi_check(MPI_Allreduce(MPI_IN_PLACE, &hi, 1, MPI_UINT64_T, MPI_MAX, ctx_.comm()), "MPI_Allreduce(checksum)");
  if (lo != hi)
    throw InternalError(fmt::format("model replicas diverged across ranks at {} (parameter checksums {:016x} .. {:016x}); "
                                    "a collective returned different sums on different ranks",
                                    where, lo, hi),
                        true);
  return h;
}

}  // namespace popcode
