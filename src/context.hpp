#pragma once
// The execution context of one popcode process: its communicator, rank and size, the hosts of the job,
// and checked collective helpers that account their time as communication.
//
// Every member function documented as collective must be called by all ranks of the communicator in the
// same order. Errors detected on some ranks only are turned into an error every rank raises with
// `agree`, so no rank is left waiting in a collective.
#include <mpi.h>

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "src/errors.hpp"

namespace popcode {

// Throws InternalError with the MPI error string when `rc` is not MPI_SUCCESS.
void mpi_check(int rc, const char* call);

class Context {
 public:
  // Collective over `comm`. Switches `comm` to MPI_ERRORS_RETURN so failures surface as exceptions.
  explicit Context(MPI_Comm comm);

  MPI_Comm comm() const { return comm_; }
  int rank() const { return rank_; }
  int size() const { return size_; }
  bool root() const { return rank_ == 0; }
  // Host name of every rank (index = rank), gathered at construction.
  const std::vector<std::string>& hosts() const { return hosts_; }

  // Collective: element-wise sums/maxima over ranks, in place.
  void allreduce_sum(std::span<double> values) const;
  void allreduce_sum(std::span<std::int64_t> values) const;
  void allreduce_max(std::span<double> values) const;
  double sum(double v) const;
  std::int64_t sum(std::int64_t v) const;
  double max(double v) const;
  double min(double v) const;
  std::int64_t max(std::int64_t v) const;
  // Collective: exclusive prefix sum of `v` over ranks (0 on rank 0).
  std::int64_t exclusive_prefix(std::int64_t v) const;
  // Collective: true when `flag` is true on any rank.
  bool any(bool flag) const;
  // Collective: true when `bytes` hold the same content on every rank (compared by a 64-bit FNV-1a hash, one
  // small allreduce). For state every rank computes from allreduced values and assumes replicated: the MPI
  // standard does not promise that a reduction's result is bitwise the same on every rank.
  bool same_on_all_ranks(std::span<const std::byte> bytes) const;
  // Collective: rank 0's value on every rank.
  void broadcast(std::span<double> values, int from = 0) const;
  std::string broadcast(const std::string& s, int from = 0) const;
  // Collective: every rank's value, on every rank.
  std::vector<double> allgather(double v) const;
  void barrier() const;

  // Collective error agreement. If `failed` is true on any rank, every rank throws an error of the given
  // code (marked collective) carrying the message of the lowest failing rank, prefixed by its rank when
  // more than one rank runs. Otherwise returns normally.
  void agree(bool failed, const std::string& message, ExitCode code) const;

 private:
  MPI_Comm comm_;
  int rank_ = 0;
  int size_ = 1;
  std::vector<std::string> hosts_;
};

// Collective: runs `fn` on rank 0 only. An Error it throws is raised on every rank with its exit code (any
// other exception as an internal error), so no rank waits in a later collective.
template <typename Fn>
void on_root(const Context& ctx, Fn&& fn) {
  std::string error;
  ExitCode code = ExitCode::ok;
  if (ctx.root()) {
    try {
      fn();
    } catch (const Error& e) {
      error = e.what();
      code = e.code();
    } catch (const std::exception& e) {
      error = e.what();
      code = ExitCode::internal;
    }
  }
  double c = static_cast<double>(code);
  ctx.broadcast(std::span<double>(&c, 1));
  ctx.agree(!error.empty(), error, static_cast<ExitCode>(static_cast<int>(c)));
}

// Collective: runs `fn` on every rank; if it throws an Error on any rank, every rank raises the lowest
// failing rank's message with the largest exit code seen.
template <typename Fn>
void on_every_rank(const Context& ctx, Fn&& fn) {
  std::string error;
  ExitCode code = ExitCode::ok;
  try {
    fn();
  } catch (const Error& e) {
    error = e.what();
    code = e.code();
  }
  double c = static_cast<double>(code);
  ctx.allreduce_max(std::span<double>(&c, 1));
  ctx.agree(!error.empty(), error, static_cast<ExitCode>(static_cast<int>(c)));
}

}  // namespace popcode
