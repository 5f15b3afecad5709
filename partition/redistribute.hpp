#pragma once
// Redistribution of a population matrix between neuron blocks and sample (stimulus) blocks.
//
// Neuron-blocked: rank r holds rows neurons.range(r) of every sample (Matrix neurons.count(r) x S).
// Sample-blocked: rank r holds every neuron of samples.range(r) (Matrix N x samples.count(r)).
// Both directions are one MPI_Alltoallv each; a rank sends and receives only its own block's worth of
// data, so peak memory per rank is about twice its block.
#include "partition/block_layout.hpp"
#include "solvers/matrix.hpp"
#include "src/context.hpp"

namespace popcode {

// Collective. `local` is this rank's neuron block (neurons.count(rank) x samples.size()).
// Returns this rank's sample block (neurons.size() x samples.count(rank)).
Matrix neuron_to_sample_blocks(const Context& ctx, const Matrix& local, const BlockLayout& neurons,
                               const BlockLayout& samples);

// The same with neuron blocks of arbitrary sizes (neurons.count(r) rows on rank r).
Matrix neuron_to_sample_blocks(const Context& ctx, const Matrix& local, const CountLayout& neurons,
                               const BlockLayout& samples);

// Collective. The inverse of neuron_to_sample_blocks.
Matrix sample_to_neuron_blocks(const Context& ctx, const Matrix& local, const BlockLayout& neurons,
                               const BlockLayout& samples);

Matrix sample_to_neuron_blocks(const Context& ctx, const Matrix& local, const CountLayout& neurons,
                               const BlockLayout& samples);

}  // namespace popcode
