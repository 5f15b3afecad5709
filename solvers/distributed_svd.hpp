#pragma once
// Leading singular triplets of a tall matrix distributed by rows (neurons): A = U S W^T, A is N x T.
//
// Method
//   gram:  G = A^T A (T x T) is summed over ranks from local products (dsyrk), its `k` largest eigenpairs
//          (dsyevr) give W and S^2, and each rank forms its rows of U = A W S^-1. Deterministic, exact to
//          rounding and rank-count invariant to rounding; replicates a T x T matrix on every rank, so it
//          is the choice for T up to a few thousand.
//   slepc: SLEPc's SVD solver on a PETSc MATMPIDENSE wrapping the local rows without copying (default
//          SVD type cross with Krylov-Schur; PETSC_OPTIONS -svd_type overrides). Memory O(N T / P + k T);
//          converged to `tol`, so results agree across rank counts to about tol, not to rounding.
//   automatic: gram for T <= 2048, slepc above.
// Signs are canonical: the entry of largest magnitude of each column of W is positive.
// Used by preprocessing to find spontaneous-activity PCs (Stringer et al. 2019, processResp/loadProc2800.m,
// which takes the right singular vectors of the time x neuron spontaneous matrix, i.e. U here).
#include <cstdint>
#include <string>
#include <vector>

#include "solvers/matrix.hpp"
#include "src/context.hpp"

namespace popcode {

enum class SvdMethod { automatic, gram, slepc };
SvdMethod parse_svd_method(const std::string& name);  // "auto", "gram", "slepc"
const char* svd_method_name(SvdMethod m);

struct TruncatedSvd {
  Matrix u_local;                       // local rows of U (n_local x k)
  std::vector<double> singular_values;  // k, descending
  Matrix w;                             // T x k, replicated on every rank
  SvdMethod method_used = SvdMethod::gram;
};

// Collective. `a_local` is this rank's rows (n_local x T; T identical on all ranks). 1 <= k <= min(N, T).
TruncatedSvd leading_singular_triplets(const Context& ctx, const Matrix& a_local, std::int64_t k, SvdMethod method,
                                       double tol = 1e-12);

// The gram method in its two halves, for a caller that runs the replicated eigen-decomposition on one rank
// while another rank does other replicated work (the rf stage). Between them the caller computes the `k`
// leading eigenpairs of G (symmetric_eigen) and broadcasts them.
// Collective: G = A^T A (T x T), summed over ranks, on every rank.
Matrix allreduced_gram(const Context& ctx, const Matrix& a_local);
// Local: canonical signs, S = sqrt(max(lambda, 0)) and this rank's rows of U = A W S^-1 from the k leading
// eigenpairs of G (lambda descending, W T x k).
TruncatedSvd triplets_from_gram(const Matrix& a_local, std::vector<double> lambda, Matrix w);

}  // namespace popcode
