#include "solvers/distributed_svd.hpp"

#include <fmt/format.h>
#include <slepcsvd.h>

#include <algorithm>
#include <cmath>

#include "solvers/dense.hpp"
#include "solvers/petsc_env.hpp"
#include "src/log.hpp"
#include "src/timing.hpp"

namespace popcode {

SvdMethod parse_svd_method(const std::string& name) {
  if (name == "auto") return SvdMethod::automatic;
  if (name == "gram") return SvdMethod::gram;
  if (name == "slepc") return SvdMethod::slepc;
  throw UsageError(fmt::format("unknown SVD method '{}' (expected auto, gram or slepc)", name));
}

const char* svd_method_name(SvdMethod m) {
  switch (m) {
    case SvdMethod::automatic: return "auto";
    case SvdMethod::gram: return "gram";
    case SvdMethod::slepc: return "slepc";
  }
  return "?";
}

namespace {

// U_local <- A_local W S^-1, with zero columns where S is zero (rank-deficient input).
void left_vectors(const Matrix& a_local, const Matrix& w, const std::vector<double>& s, Matrix& u_local) {
  u_local = Matrix(a_local.rows(), w.cols());
  gemm(Trans::no, Trans::no, 1.0, a_local, w, 0.0, u_local);
  for (std::int64_t j = 0; j < w.cols(); ++j) {
    const double inv = s[static_cast<std::size_t>(j)] > 0 ? 1.0 / s[static_cast<std::size_t>(j)] : 0.0;
    for (double& x : u_local.col(j)) x *= inv;
  }
}

TruncatedSvd by_gram(const Context& ctx, const Matrix& a_local, std::int64_t k) {
  Matrix g = allreduced_gram(ctx, a_local);
  Matrix w;
  std::vector<double> lambda = symmetric_eigen(g, k, &w);  // G W = W Lambda, top k
  return triplets_from_gram(a_local, std::move(lambda), std::move(w));
}

struct PetscObjects {
  Mat a = nullptr;
  SVD svd = nullptr;
  Vec u = nullptr, v = nullptr, v_all = nullptr;
  VecScatter to_all = nullptr;
  ~PetscObjects() {
    if (to_all) VecScatterDestroy(&to_all);
    if (v_all) VecDestroy(&v_all);
    if (u) VecDestroy(&u);
    if (v) VecDestroy(&v);
    if (svd) SVDDestroy(&svd);
    if (a) MatDestroy(&a);
  }
};

TruncatedSvd by_slepc(const Context& ctx, const Matrix& a_local, std::int64_t k, double tol) {
  TruncatedSvd out;
  out.method_used = SvdMethod::slepc;
  const std::int64_t t = a_local.cols();
  const std::int64_t n_total = ctx.sum(static_cast<std::int64_t>(a_local.rows()));
  PetscObjects p;
  // PETSc keeps a pointer to the local rows: A's storage is exactly our column-major block.
  petsc_check(MatCreateDense(ctx.comm(), static_cast<PetscInt>(a_local.rows()), PETSC_DECIDE, static_cast<PetscInt>(n_total),
                             static_cast<PetscInt>(t), const_cast<double*>(a_local.data()), &p.a),
              "MatCreateDense");
  petsc_check(MatAssemblyBegin(p.a, MAT_FINAL_ASSEMBLY), "MatAssemblyBegin");
  petsc_check(MatAssemblyEnd(p.a, MAT_FINAL_ASSEMBLY), "MatAssemblyEnd");
  petsc_check(SVDCreate(ctx.comm(), &p.svd), "SVDCreate");
  petsc_check(SVDSetOperators(p.svd, p.a, nullptr), "SVDSetOperators");
  petsc_check(SVDSetDimensions(p.svd, static_cast<PetscInt>(k), PETSC_DEFAULT, PETSC_DEFAULT), "SVDSetDimensions");
  petsc_check(SVDSetWhichSingularTriplets(p.svd, SVD_LARGEST), "SVDSetWhichSingularTriplets");
  petsc_check(SVDSetTolerances(p.svd, tol, 10000), "SVDSetTolerances");
  petsc_check(SVDSetFromOptions(p.svd), "SVDSetFromOptions");
  {
    ScopedPhase phase(Phase::compute);
    petsc_check(SVDSolve(p.svd), "SVDSolve");
  }
  PetscInt converged = 0;
  petsc_check(SVDGetConverged(p.svd, &converged), "SVDGetConverged");
  if (converged < k) {
    throw InternalError(fmt::format("SLEPc SVD converged {} of {} singular triplets (tol {})", converged, k, tol), true);
  }
  petsc_check(MatCreateVecs(p.a, &p.v, &p.u), "MatCreateVecs");
  petsc_check(VecScatterCreateToAll(p.v, &p.to_all, &p.v_all), "VecScatterCreateToAll");
  out.w = Matrix(t, k);
  out.u_local = Matrix(a_local.rows(), k);
  out.singular_values.resize(static_cast<std::size_t>(k));
  for (std::int64_t j = 0; j < k; ++j) {
    PetscReal sigma = 0;
    petsc_check(SVDGetSingularTriplet(p.svd, static_cast<PetscInt>(j), &sigma, p.u, p.v), "SVDGetSingularTriplet");
    out.singular_values[static_cast<std::size_t>(j)] = sigma;
    petsc_check(VecScatterBegin(p.to_all, p.v, p.v_all, INSERT_VALUES, SCATTER_FORWARD), "VecScatterBegin");
    petsc_check(VecScatterEnd(p.to_all, p.v, p.v_all, INSERT_VALUES, SCATTER_FORWARD), "VecScatterEnd");
    const PetscScalar* vals = nullptr;
    petsc_check(VecGetArrayRead(p.v_all, &vals), "VecGetArrayRead");
    std::copy_n(vals, t, out.w.col(j).data());
    petsc_check(VecRestoreArrayRead(p.v_all, &vals), "VecRestoreArrayRead");
    petsc_check(VecGetArrayRead(p.u, &vals), "VecGetArrayRead");
    std::copy_n(vals, a_local.rows(), out.u_local.col(j).data());
    petsc_check(VecRestoreArrayRead(p.u, &vals), "VecRestoreArrayRead");
  }
  // Same canonical signs as the gram method; U follows W.
  const std::vector<double> flips = canonical_signs(out.w);
  for (std::int64_t j = 0; j < k; ++j) {
    if (flips[static_cast<std::size_t>(j)] < 0)
      for (double& x : out.u_local.col(j)) x = -x;
  }
  return out;
}

}  // namespace

Matrix allreduced_gram(const Context& ctx, const Matrix& a_local) {
  Matrix g;
  gram(a_local, g);                 // G <- A_local^T A_local
  ctx.allreduce_sum(g.values());    // G <- sum over ranks
  return g;
}

TruncatedSvd triplets_from_gram(const Matrix& a_local, std::vector<double> lambda, Matrix w) {
  TruncatedSvd out;
  out.method_used = SvdMethod::gram;
  out.w = std::move(w);
  canonical_signs(out.w);
  out.singular_values.resize(lambda.size());
  for (std::size_t j = 0; j < lambda.size(); ++j) out.singular_values[j] = std::sqrt(std::max(lambda[j], 0.0));
  left_vectors(a_local, out.w, out.singular_values, out.u_local);
  return out;
}

TruncatedSvd leading_singular_triplets(const Context& ctx, const Matrix& a_local, std::int64_t k, SvdMethod method,
                                       double tol) {
  const std::int64_t t = a_local.cols();
  const std::int64_t n_total = ctx.sum(static_cast<std::int64_t>(a_local.rows()));
  if (k < 1 || k > std::min(n_total, t)) {
    throw InternalError(fmt::format("leading_singular_triplets: k = {} outside [1, min(N = {}, T = {})]", k, n_total, t), true);
  }
  if (method == SvdMethod::automatic) method = t <= 2048 ? SvdMethod::gram : SvdMethod::slepc;
  return method == SvdMethod::gram ? by_gram(ctx, a_local, k) : by_slepc(ctx, a_local, k, tol);
}

}  // namespace popcode
