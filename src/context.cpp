#include "src/context.hpp"

#include <fmt/format.h>

#include <algorithm>

#include "src/timing.hpp"

namespace popcode {

void mpi_check(int rc, const char* call) {
  if (rc == MPI_SUCCESS) return;
  char text[MPI_MAX_ERROR_STRING];
  int len = 0;
  MPI_Error_string(rc, text, &len);
  throw InternalError(fmt::format("MPI call {} failed: {}", call, std::string(text, static_cast<std::size_t>(len))));
}

Context::Context(MPI_Comm comm) : comm_(comm) {
  mpi_check(MPI_Comm_set_errhandler(comm_, MPI_ERRORS_RETURN), "MPI_Comm_set_errhandler");
  mpi_check(MPI_Comm_rank(comm_, &rank_), "MPI_Comm_rank");
  mpi_check(MPI_Comm_size(comm_, &size_), "MPI_Comm_size");
  char name[MPI_MAX_PROCESSOR_NAME];
  int len = 0;
  mpi_check(MPI_Get_processor_name(name, &len), "MPI_Get_processor_name");
  std::vector<char> all(static_cast<std::size_t>(size_) * MPI_MAX_PROCESSOR_NAME, '\0');
  std::fill(name + len, name + MPI_MAX_PROCESSOR_NAME, '\0');
  mpi_check(MPI_Allgather(name, MPI_MAX_PROCESSOR_NAME, MPI_CHAR, all.data(), MPI_MAX_PROCESSOR_NAME, MPI_CHAR, comm_),
            "MPI_Allgather(hosts)");
  for (int r = 0; r < size_; ++r) hosts_.emplace_back(all.data() + static_cast<std::size_t>(r) * MPI_MAX_PROCESSOR_NAME);
}

namespace {
// MPI counts are int; reduce long spans in pieces.
constexpr std::size_t kMaxCount = 1u << 30;
}  // namespace

void Context::allreduce_sum(std::span<double> values) const {
  ScopedPhase phase(Phase::comm);
  for (std::size_t off = 0; off < values.size(); off += kMaxCount) {
    const int n = static_cast<int>(std::min(kMaxCount, values.size() - off));
    mpi_check(MPI_Allreduce(MPI_IN_PLACE, values.data() + off, n, MPI_DOUBLE, MPI_SUM, comm_), "MPI_Allreduce(sum)");
  }
}

void Context::allreduce_sum(std::span<std::int64_t> values) const {
  ScopedPhase phase(Phase::comm);
  for (std::size_t off = 0; off < values.size(); off += kMaxCount) {
    const int n = static_cast<int>(std::min(kMaxCount, values.size() - off));
    mpi_check(MPI_Allreduce(MPI_IN_PLACE, values.data() + off, n, MPI_INT64_T, MPI_SUM, comm_), "MPI_Allreduce(sum)");
  }
}

void Context::allreduce_max(std::span<double> values) const {
  ScopedPhase phase(Phase::comm);
  for (std::size_t off = 0; off < values.size(); off += kMaxCount) {
    const int n = static_cast<int>(std::min(kMaxCount, values.size() - off));
    mpi_check(MPI_Allreduce(MPI_IN_PLACE, values.data() + off, n, MPI_DOUBLE, MPI_MAX, comm_), "MPI_Allreduce(max)");
  }
}

double Context::sum(double v) const {
  allreduce_sum(std::span<double>(&v, 1));
  return v;
}
std::int64_t Context::sum(std::int64_t v) const {
  allreduce_sum(std::span<std::int64_t>(&v, 1));
  return v;
}
double Context::max(double v) const {
  allreduce_max(std::span<double>(&v, 1));
  return v;
}
double Context::min(double v) const { return -max(-v); }
std::int64_t Context::max(std::int64_t v) const {
  ScopedPhase phase(Phase::comm);
  mpi_check(MPI_Allreduce(MPI_IN_PLACE, &v, 1, MPI_INT64_T, MPI_MAX, comm_), "MPI_Allreduce(max)");
  return v;
}

std::int64_t Context::exclusive_prefix(std::int64_t v) const {
  ScopedPhase phase(Phase::comm);
  std::int64_t out = 0;
  mpi_check(MPI_Exscan(&v, &out, 1, MPI_INT64_T, MPI_SUM, comm_), "MPI_Exscan");
  return rank_ == 0 ? 0 : out;
}

bool Context::any(bool flag) const {
  ScopedPhase phase(Phase::comm);
  int v = flag ? 1 : 0;
  mpi_check(MPI_Allreduce(MPI_IN_PLACE, &v, 1, MPI_INT, MPI_LOR, comm_), "MPI_Allreduce(lor)");
  return v != 0;
}

bool Context::same_on_all_ranks(std::span<const std::byte> bytes) const {
  std::uint64_t h = 0xcbf29ce484222325ULL;
  for (std::byte b : bytes) h = (h ^ static_cast<std::uint64_t>(b)) * 0x100000001b3ULL;
  ScopedPhase phase(Phase::comm);
  // max(h) and max(~h) = ~min(h) in one reduction: equal everywhere iff the largest and smallest agree.
  std::uint64_t v[2] = {h, ~h};
  mpi_check(MPI_Allreduce(MPI_IN_PLACE, v, 2, MPI_UINT64_T, MPI_MAX, comm_), "MPI_Allreduce(max)");
  return v[0] == ~v[1];
}

void Context::broadcast(std::span<double> values, int from) const {
  ScopedPhase phase(Phase::comm);
  for (std::size_t off = 0; off < values.size(); off += kMaxCount) {
    const int n = static_cast<int>(std::min(kMaxCount, values.size() - off));
    mpi_check(MPI_Bcast(values.data() + off, n, MPI_DOUBLE, from, comm_), "MPI_Bcast");
  }
}

std::string Context::broadcast(const std::string& s, int from) const {
  ScopedPhase phase(Phase::comm);
  long long n = static_cast<long long>(s.size());
  mpi_check(MPI_Bcast(&n, 1, MPI_LONG_LONG, from, comm_), "MPI_Bcast(length)");
  std::string out = rank_ == from ? s : std::string(static_cast<std::size_t>(n), '\0');
  if (n > 0) mpi_check(MPI_Bcast(out.data(), static_cast<int>(n), MPI_CHAR, from, comm_), "MPI_Bcast(string)");
  return out;
}

std::vector<double> Context::allgather(double v) const {
  ScopedPhase phase(Phase::comm);
  std::vector<double> out(static_cast<std::size_t>(size_));
  mpi_check(MPI_Allgather(&v, 1, MPI_DOUBLE, out.data(), 1, MPI_DOUBLE, comm_), "MPI_Allgather");
  return out;
}

void Context::barrier() const {
  ScopedPhase phase(Phase::comm);
  mpi_check(MPI_Barrier(comm_), "MPI_Barrier");
}

void Context::agree(bool failed, const std::string& message, ExitCode code) const {
  int first = failed ? rank_ : size_;
  {
    ScopedPhase phase(Phase::comm);
    mpi_check(MPI_Allreduce(MPI_IN_PLACE, &first, 1, MPI_INT, MPI_MIN, comm_), "MPI_Allreduce(agree)");
  }
  if (first == size_) return;
  std::string text = broadcast(message, first);
  if (size_ > 1) text = fmt::format("(rank {}) {}", first, text);
  throw_error(code, text, /*collective=*/true);
}

}  // namespace popcode
