// cvPCA passes with SLEPc on a shell operator (see solvers/cvpca.hpp for the method and the contract).
//
// Per pass, the training Gram operator x -> R_tr (R_tr^T x) is applied without forming any S x S matrix:
//   x_all  <- allgather(x)                          (S, replicated)
//   z      <- sum_s x_all[s] r_tr,s                 (local neurons; r_tr,s = column of the local block)
//   y_part <- [r_tr,s . z]_s                        (S, partial sums over local neurons)
//   y      <- reduce_scatter(y_part)                (PETSc's stimulus layout)
// Krylov-Schur (EPS_HEP) finds the leading `components` eigenpairs (b_k, a_k). Then, with the eigenvectors
// gathered (S x K), Z_tr = R_tr^T A and Z_te = R_te^T A on the local neurons give
//   signal_k = sum_neurons Z_tr[:,k] Z_te[:,k],    C a_k = R_te Z_tr[:,k] (summed over ranks).
#include <fmt/format.h>
#include <slepceps.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

#include "solvers/cvpca.hpp"
#include "solvers/dense.hpp"
#include "solvers/petsc_env.hpp"
#include "src/progress.hpp"
#include "src/timing.hpp"

namespace popcode::detail {
namespace {

struct ShellContext {
  const Context* ctx = nullptr;
  const Matrix* repeats = nullptr;
  std::vector<std::int64_t> tr;      // training column of each stimulus in the local block
  VecScatter to_all = nullptr;
  Vec x_all = nullptr;
  std::vector<double> z, y_part;
  std::vector<int> counts;           // PETSc's rows per rank (for the reduce-scatter)
  std::int64_t applications = 0;
};

PetscErrorCode apply_training_gram(Mat a, Vec x, Vec y) {
  ShellContext* sc = nullptr;
  PetscCall(MatShellGetContext(a, &sc));
  const Matrix& r = *sc->repeats;
  const std::int64_t n = r.rows(), s = static_cast<std::int64_t>(sc->tr.size());
  ++sc->applications;
  {
    ScopedPhase phase(Phase::comm);
    PetscCall(VecScatterBegin(sc->to_all, x, sc->x_all, INSERT_VALUES, SCATTER_FORWARD));
    PetscCall(VecScatterEnd(sc->to_all, x, sc->x_all, INSERT_VALUES, SCATTER_FORWARD));
  }
  const PetscScalar* xa = nullptr;
  PetscCall(VecGetArrayRead(sc->x_all, &xa));
  std::fill(sc->z.begin(), sc->z.end(), 0.0);
  for (std::int64_t j = 0; j < s; ++j) {  // z <- R_tr^T x on the local neurons
    const double* col = r.col(sc->tr[j]).data();
    const double xj = xa[j];
    for (std::int64_t i = 0; i < n; ++i) sc->z[i] += xj * col[i];
  }
  PetscCall(VecRestoreArrayRead(sc->x_all, &xa));
  for (std::int64_t j = 0; j < s; ++j) {  // y_part <- R_tr z (local neurons' share)
    const double* col = r.col(sc->tr[j]).data();
    double acc = 0;
    for (std::int64_t i = 0; i < n; ++i) acc += col[i] * sc->z[i];
    sc->y_part[j] = acc;
  }
  PetscScalar* ya = nullptr;
  PetscCall(VecGetArray(y, &ya));
  {
    ScopedPhase phase(Phase::comm);
    const int rc = MPI_Reduce_scatter(sc->y_part.data(), ya, sc->counts.data(), MPI_DOUBLE, MPI_SUM, sc->ctx->comm());
    PetscCheck(rc == MPI_SUCCESS, PETSC_COMM_SELF, PETSC_ERR_LIB, "MPI_Reduce_scatter failed in the cvPCA operator");
  }
  PetscCall(VecRestoreArray(y, &ya));
  return 0;
}

struct PassObjects {
  Mat op = nullptr;
  EPS eps = nullptr;
  Vec v = nullptr, v_all = nullptr;
  VecScatter to_all = nullptr;
  ~PassObjects() {
    if (to_all) VecScatterDestroy(&to_all);
    if (v_all) VecDestroy(&v_all);
    if (v) VecDestroy(&v);
    if (eps) EPSDestroy(&eps);
    if (op) MatDestroy(&op);
  }
};

}  // namespace

void cvpca_passes_slepc(const Context& ctx, const Matrix& repeats, const CvpcaOptions& opt, CvpcaResult& out) {
  const std::int64_t s = out.stimuli, k = out.components, n = repeats.rows();
  Progress progress(fmt::format("cvPCA passes (SLEPc, {} components)", k), static_cast<std::size_t>(out.passes));
  double matvecs = 0;
  for (int p = 0; p < out.passes; ++p) {
    const std::uint8_t* swapped = out.swapped.data() + static_cast<std::size_t>(p) * static_cast<std::size_t>(s);
    ShellContext sc;
    sc.ctx = &ctx;
    sc.repeats = &repeats;
    sc.tr.resize(static_cast<std::size_t>(s));
    std::vector<std::int64_t> te(static_cast<std::size_t>(s));
    for (std::int64_t i = 0; i < s; ++i) {
      sc.tr[i] = swapped[i] ? s + i : i;
      te[i] = swapped[i] ? i : s + i;
    }
    sc.z.assign(static_cast<std::size_t>(n), 0.0);
    sc.y_part.assign(static_cast<std::size_t>(s), 0.0);

    PassObjects po;
    petsc_check(MatCreateShell(ctx.comm(), PETSC_DECIDE, PETSC_DECIDE, static_cast<PetscInt>(s), static_cast<PetscInt>(s),
                               &sc, &po.op), "MatCreateShell");
    petsc_check(MatShellSetOperation(po.op, MATOP_MULT, reinterpret_cast<void (*)(void)>(apply_training_gram)),
                "MatShellSetOperation");
    petsc_check(MatSetOption(po.op, MAT_SYMMETRIC, PETSC_TRUE), "MatSetOption");
    const PetscInt* ranges = nullptr;
    petsc_check(MatGetOwnershipRanges(po.op, &ranges), "MatGetOwnershipRanges");
    for (int r = 0; r < ctx.size(); ++r) sc.counts.push_back(static_cast<int>(ranges[r + 1] - ranges[r]));
    petsc_check(MatCreateVecs(po.op, &po.v, nullptr), "MatCreateVecs");
    petsc_check(VecScatterCreateToAll(po.v, &po.to_all, &po.v_all), "VecScatterCreateToAll");
    sc.to_all = po.to_all;
    sc.x_all = po.v_all;

    petsc_check(EPSCreate(ctx.comm(), &po.eps), "EPSCreate");
    petsc_check(EPSSetOperators(po.eps, po.op, nullptr), "EPSSetOperators");
    petsc_check(EPSSetProblemType(po.eps, EPS_HEP), "EPSSetProblemType");
    petsc_check(EPSSetWhichEigenpairs(po.eps, EPS_LARGEST_REAL), "EPSSetWhichEigenpairs");
    petsc_check(EPSSetDimensions(po.eps, static_cast<PetscInt>(k), PETSC_DEFAULT, PETSC_DEFAULT), "EPSSetDimensions");
    petsc_check(EPSSetTolerances(po.eps, opt.tol, 100000), "EPSSetTolerances");
    petsc_check(EPSSetFromOptions(po.eps), "EPSSetFromOptions");
    petsc_check(EPSSolve(po.eps), "EPSSolve");
    PetscInt converged = 0;
    petsc_check(EPSGetConverged(po.eps, &converged), "EPSGetConverged");
    if (converged < k) {
      throw InternalError(fmt::format("cvPCA pass {}: SLEPc converged {} of {} eigenpairs (tol {})", p, converged, k, opt.tol), true);
    }

    // Gather the eigenvectors into padded 2S x K matrices: A_tr has a_k[s] at row tr[s], A_te at te[s].
    Matrix a_tr(2 * s, k), a_te(2 * s, k);
    std::vector<double> b(static_cast<std::size_t>(k));
    for (std::int64_t j = 0; j < k; ++j) {
      petsc_check(EPSGetEigenpair(po.eps, static_cast<PetscInt>(j), &b[j], nullptr, po.v, nullptr), "EPSGetEigenpair");
      petsc_check(VecScatterBegin(po.to_all, po.v, po.v_all, INSERT_VALUES, SCATTER_FORWARD), "VecScatterBegin");
      petsc_check(VecScatterEnd(po.to_all, po.v, po.v_all, INSERT_VALUES, SCATTER_FORWARD), "VecScatterEnd");
      const PetscScalar* va = nullptr;
      petsc_check(VecGetArrayRead(po.v_all, &va), "VecGetArrayRead");
      for (std::int64_t i = 0; i < s; ++i) {
        a_tr(sc.tr[i], j) = va[i];
        a_te(te[i], j) = va[i];
      }
      petsc_check(VecRestoreArrayRead(po.v_all, &va), "VecRestoreArrayRead");
    }
    Matrix z_tr(n, k), z_te(n, k);
    gemm(Trans::no, Trans::no, 1.0, repeats, a_tr, 0.0, z_tr);  // Z_tr <- R_tr^T A (local neurons)
    gemm(Trans::no, Trans::no, 1.0, repeats, a_te, 0.0, z_te);  // Z_te <- R_te^T A
    std::vector<double> ss(static_cast<std::size_t>(k), 0.0);
    for (std::int64_t j = 0; j < k; ++j) {
      const auto x = z_tr.col(j), y = z_te.col(j);
      ss[j] = std::inner_product(x.begin(), x.end(), y.begin(), 0.0);
    }
    Matrix ca_padded(2 * s, k);
    gemm(Trans::yes, Trans::no, 1.0, repeats, z_tr, 0.0, ca_padded);  // rows te[s]: (C A)[s,:] partial sums
    Matrix ca(s, k);
    for (std::int64_t j = 0; j < k; ++j)
      for (std::int64_t i = 0; i < s; ++i) ca(i, j) = ca_padded(te[i], j);
    double trace = 0;
    for (std::int64_t i = 0; i < s; ++i) {
      const auto x = repeats.col(te[i]), y = repeats.col(sc.tr[i]);
      trace += std::inner_product(x.begin(), x.end(), y.begin(), 0.0);
    }
    ctx.allreduce_sum(ss);
    ctx.allreduce_sum(ca.values());
    trace = ctx.sum(trace);
    for (std::int64_t j = 0; j < k; ++j) {
      double norm2 = 0;
      for (double v : ca.col(j)) norm2 += v * v;
      out.signal_per_pass(j, p) = ss[j];
      out.noise_per_pass(j, p) =
          b[j] > 0 ? b[j] + norm2 / b[j] - ss[j] : std::numeric_limits<double>::quiet_NaN();
    }
    out.total_per_pass[static_cast<std::size_t>(p)] = trace;
    matvecs += static_cast<double>(sc.applications);
    progress.advance();
  }
  progress.finish();
  const double S = static_cast<double>(s), N = static_cast<double>(out.neurons), K = static_cast<double>(k);
  // Operator applications (4 S N each) plus the projections Z_tr, Z_te, C A (2 S N K each, counting only
  // the nonzero half of the padded blocks).
  out.flops = matvecs * 4.0 * S * N + out.passes * 6.0 * S * N * K;
}

}  // namespace popcode::detail
