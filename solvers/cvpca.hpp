#pragma once
// Cross-validated PCA (cvPCA): the stimulus-related eigenspectrum of a population, from two repeats.
//
// Method (Stringer, Pachitariu et al. 2019, Nature 571:361; anchor: MouseLand stringer-pachitariu-et-al-
// 2018b powerlaws/shuffledSpectrum.m). R1, R2 are the S x N repeat-averaged responses. For each pass, a
// random half of the stimuli has its repeats swapped (training rows R_tr, test rows R_te). With the
// eigen-decomposition G_tr = R_tr R_tr^T = A B A^T, the neuron-space PCs are V = R_tr^T A B^-1/2 and
//   signal_k = sum_s (R_tr V)_sk (R_te V)_sk = a_k^T C a_k,          C = R_te R_tr^T
//   noise_k  = sum (R_tr V)_k^2 + sum (R_te V)_k^2 - signal_k = b_k + |C a_k|^2 / b_k - signal_k
// so a pass needs only stimulus-space products. Spectra are averaged over passes; the normalised spectrum
// divides the mean signal spectrum by the mean trace(C) (= the sum over all S components, which is what
// the anchor's ss / sum(ss) divides by, also when fewer components are computed).
// nshuff = 0 is one pass without swapping (repeat 1 trains, repeat 2 tests): the anchor's
// shuffledSpectrum(resp, 1). Only min(S, N) components are meaningful; popcode returns those.
//
// Distribution and memory
//   lapack (S <= 8192): the 2S x 2S Gram matrix of [R1; R2] is formed from local neuron blocks (dsyrk)
//     and summed over ranks (one MPI_Allreduce); passes are then dealt round-robin to ranks, each solving
//     its eigenproblems with dsyevd (all components) or dsyevr (a cap). Per-rank memory: the block
//     (2 S n_local) + 4S^2 (Gram) + about 5 S^2 per pass in flight (G_tr, C, A, C A, LAPACK workspace).
//   slepc (larger S, or chosen): no S x S matrix anywhere. Each pass runs SLEPc's Krylov-Schur on the shell
//     operator x -> R_tr (R_tr^T x), applied from the neuron blocks (allgather of x, local products,
//     reduce-scatter of the result), for the leading `components` eigenpairs. Per-rank memory: the block
//     + S x components for the gathered eigenvectors.
// Results are identical on every rank. With the lapack method, results at different rank counts differ
// only by the rounding of the Gram reduction.
#include <cstdint>
#include <string>
#include <vector>

#include "solvers/matrix.hpp"
#include "src/context.hpp"

namespace popcode {

enum class EigenSolver { automatic, lapack, slepc };
EigenSolver parse_eigen_solver(const std::string& name);  // "auto", "lapack", "slepc"
const char* eigen_solver_name(EigenSolver s);

struct CvpcaOptions {
  int nshuff = 10;                // passes with random swaps; 0 = one pass without swapping
  std::int64_t components = 0;    // 0 = all meaningful components, min(S, N)
  std::uint64_t seed = 0;         // seeds the swap masks
  EigenSolver solver = EigenSolver::automatic;
  double tol = 1e-12;             // SLEPc convergence tolerance
};

struct CvpcaResult {
  std::int64_t stimuli = 0, neurons = 0, components = 0;
  int passes = 0;
  EigenSolver solver_used = EigenSolver::lapack;
  Matrix signal_per_pass;             // components x passes, raw (unnormalised)
  Matrix noise_per_pass;              // components x passes
  std::vector<double> total_per_pass; // trace(R_te R_tr^T) per pass
  std::vector<double> signal_raw;     // mean over passes
  std::vector<double> noise_raw;      // mean over passes
  std::vector<double> signal;         // signal_raw / mean(total_per_pass)
  std::vector<std::uint8_t> swapped;  // passes x stimuli, row-major: 1 where the repeats were swapped
  double flops = 0;                   // operation count of the Gram products and eigensolves (the floor)
};

// The swap masks: passes x stimuli (row-major), a function of (seed, pass, stimulus) only.
std::vector<std::uint8_t> cvpca_swap_masks(std::uint64_t seed, int nshuff, std::int64_t stimuli);

// Collective. `repeats` is this rank's neuron block, n_local x 2S: columns [0, S) hold repeat 1 and
// [S, 2S) repeat 2 of the same stimuli.
CvpcaResult cross_validated_spectrum(const Context& ctx, const Matrix& repeats, const CvpcaOptions& options);

namespace detail {
// The SLEPc path (solvers/cvpca_slepc.cpp); fills the per-pass fields of `out`.
void cvpca_passes_slepc(const Context& ctx, const Matrix& repeats, const CvpcaOptions& options, CvpcaResult& out);
}  // namespace detail

}  // namespace popcode
