#pragma once
// Products between the two repeats' population vectors, summed over all neurons: the shared first step of
// identity decoding (solvers/identity_decoding.hpp) and of the response-distance distributions
// (solvers/response_distances.hpp).
//
// With a_t the repeat-1 and b_s the repeat-2 vector of stimulus t, s over the chosen neurons (after the
// transform), it computes <a_t, b_s> for all t, s and the squared norms |a_t|^2, |b_s|^2.
// Transforms:
//   raw:            the preprocessed responses as they are;
//   zscore:         each neuron z-scored over stimuli within each repeat (s.d. with S - 1, as MATLAB's
//                   zscore); a neuron constant over stimuli in a repeat is set to 0 there and counted;
//   zscore_centred: zscore, then each population vector centred over the neurons (so products of unit-
//                   normalised vectors are Pearson correlations over neurons).
//
// Distribution: each rank transforms its neuron rows (local: a neuron's statistics are over stimuli),
// forms its S x S contribution A^T B by BLAS, and MPI_Reduce_scatter leaves it the summed columns of its
// block of repeat-2 stimuli (BlockLayout(S, P)). Memory per rank: the transformed copy of the chosen rows
// (<= n_local x 2S), the local S x S contribution (freed before returning) and S x ceil(S/P) columns.
#include <cstdint>
#include <vector>

#include "partition/block_layout.hpp"
#include "solvers/matrix.hpp"
#include "src/context.hpp"

namespace popcode {

enum class CrossTransform { raw, zscore, zscore_centred };

struct CrossRepeatProducts {
  std::int64_t stimuli = 0;
  std::int64_t neurons = 0;                // chosen neurons over all ranks
  std::int64_t zero_variance = 0;          // (neuron, repeat) pairs set to 0 by a z-score transform
  Range queries;                           // this rank's repeat-2 stimuli
  std::vector<double> columns;             // S x queries.size(), column-major: <a_t, b_s> at t + (s - queries.begin) S
  std::vector<double> norm2;               // 2S: |a_t|^2 for t < S, then |b_s|^2 (replicated)
  double at(std::int64_t t, std::int64_t s) const {
    return columns[static_cast<std::size_t>(t + (s - queries.begin) * stimuli)];
  }
};

// Collective. `repeats` is this rank's n_local x 2S block [repeat 1 | repeat 2]; `rows` the local rows to
// use (ascending), or every row when `all_rows`.
CrossRepeatProducts cross_repeat_products(const Context& ctx, const Matrix& repeats, const std::vector<std::int64_t>& rows,
                                          bool all_rows, CrossTransform transform);

// Collective: every rank's `local` values concatenated in rank order, on every rank.
template <typename T>
std::vector<T> allgather_blocks(const Context& ctx, const std::vector<T>& local, MPI_Datatype type) {
  const int p = ctx.size();
  std::vector<int> counts(static_cast<std::size_t>(p)), displs(static_cast<std::size_t>(p), 0);
  const int mine = static_cast<int>(local.size());
  mpi_check(MPI_Allgather(&mine, 1, MPI_INT, counts.data(), 1, MPI_INT, ctx.comm()), "MPI_Allgather");
  for (int r = 1; r < p; ++r) displs[static_cast<std::size_t>(r)] = displs[static_cast<std::size_t>(r - 1)] + counts[static_cast<std::size_t>(r - 1)];
  std::vector<T> all(static_cast<std::size_t>(displs.back() + counts.back()));
  mpi_check(MPI_Allgatherv(local.data(), mine, type, all.data(), counts.data(), displs.data(), type, ctx.comm()),
            "MPI_Allgatherv");
  return all;
}

}  // namespace popcode
