#include "solvers/cvpca.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <limits>

#include "solvers/dense.hpp"
#include "src/log.hpp"
#include "src/progress.hpp"
#include "src/rng.hpp"

namespace popcode {

EigenSolver parse_eigen_solver(const std::string& name) {
  if (name == "auto") return EigenSolver::automatic;
  if (name == "lapack") return EigenSolver::lapack;
  if (name == "slepc") return EigenSolver::slepc;
  throw UsageError(fmt::format("unknown eigensolver '{}' (expected auto, lapack or slepc)", name));
}

const char* eigen_solver_name(EigenSolver s) {
  switch (s) {
    case EigenSolver::automatic: return "auto";
    case EigenSolver::lapack: return "lapack";
    case EigenSolver::slepc: return "slepc";
  }
  return "?";
}

std::vector<std::uint8_t> cvpca_swap_masks(std::uint64_t seed, int nshuff, std::int64_t stimuli) {
  const int passes = std::max(1, nshuff);
  std::vector<std::uint8_t> masks(static_cast<std::size_t>(passes * stimuli), 0);
  if (nshuff == 0) return masks;
  const CounterRng rng(seed);
  for (int p = 0; p < passes; ++p)
    for (std::int64_t s = 0; s < stimuli; ++s)
      masks[static_cast<std::size_t>(p * stimuli + s)] =
          rng.uniform(Stream::shuffle, static_cast<std::uint32_t>(p), static_cast<std::uint32_t>(s)) < 0.5 ? 1 : 0;
  return masks;
}

namespace {

constexpr std::int64_t kLapackLimit = 8192;
constexpr std::int64_t kDefaultSlepcComponents = 1024;

// One pass of the LAPACK method from the replicated Gram matrix of [R1; R2].
void lapack_pass(const Matrix& g, const std::uint8_t* swapped, std::int64_t k, double* signal, double* noise,
                 double* total) {
  const std::int64_t s = g.rows() / 2;
  std::vector<std::int64_t> tr(static_cast<std::size_t>(s)), te(static_cast<std::size_t>(s));
  for (std::int64_t i = 0; i < s; ++i) {
    tr[i] = swapped[i] ? s + i : i;  // training row of stimulus i in [R1; R2]
    te[i] = swapped[i] ? i : s + i;  // test row
  }
  Matrix gtr(s, s), c(s, s);
  for (std::int64_t j = 0; j < s; ++j) {
    for (std::int64_t i = 0; i < s; ++i) {
      gtr(i, j) = g(tr[i], tr[j]);  // G_tr = R_tr R_tr^T
      c(i, j) = g(te[i], tr[j]);    // C    = R_te R_tr^T
    }
  }
  double trace = 0;
  for (std::int64_t i = 0; i < s; ++i) trace += c(i, i);
  *total = trace;
  Matrix a;
  const std::vector<double> b = symmetric_eigen(gtr, k, &a);  // G_tr A = A B, descending
  Matrix ca(s, k);
  gemm(Trans::no, Trans::no, 1.0, c, a, 0.0, ca);              // CA <- C A
  for (std::int64_t j = 0; j < k; ++j) {
    double ss = 0, norm2 = 0;
    const auto aj = a.col(j);
    const auto caj = ca.col(j);
    for (std::int64_t i = 0; i < s; ++i) {
      ss += aj[i] * caj[i];      // a_k^T C a_k
      norm2 += caj[i] * caj[i];  // |C a_k|^2
    }
    signal[j] = ss;
    noise[j] = b[j] > 0 ? b[j] + norm2 / b[j] - ss : std::numeric_limits<double>::quiet_NaN();
  }
}

}  // namespace

CvpcaResult cross_validated_spectrum(const Context& ctx, const Matrix& repeats, const CvpcaOptions& opt) {
  CvpcaResult out;
  if (repeats.cols() % 2 != 0) throw InternalError("cross_validated_spectrum: repeats must have 2S columns");
  const std::int64_t s = repeats.cols() / 2;
  const std::int64_t n = ctx.sum(static_cast<std::int64_t>(repeats.rows()));
  out.stimuli = s;
  out.neurons = n;
  const std::int64_t meaningful = std::min(s, n);
  if (meaningful < 2) {
    throw InputError(fmt::format("cvPCA needs at least 2 stimuli and 2 neurons, found {} and {}", s, n), true);
  }
  if (opt.components < 0) throw UsageError(fmt::format("spectrum.components = {} must be >= 0", opt.components), true);
  out.components = opt.components == 0 ? meaningful : std::min(opt.components, meaningful);
  out.passes = std::max(1, opt.nshuff);
  out.solver_used = opt.solver;
  if (out.solver_used == EigenSolver::automatic) {
    out.solver_used = s <= kLapackLimit ? EigenSolver::lapack : EigenSolver::slepc;
    if (out.solver_used == EigenSolver::slepc && opt.components == 0) {
      out.components = std::min(meaningful, kDefaultSlepcComponents);
      log::warn_once("cvPCA: {} stimuli is beyond the dense limit ({}); computing the leading {} components with SLEPc "
                     "(set spectrum.components to choose)", s, kLapackLimit, out.components);
    }
  }
  if (out.solver_used == EigenSolver::slepc && out.components >= meaningful) {
    throw UsageError(fmt::format("spectrum.solver = slepc computes a leading subset: set spectrum.components below {}",
                                 meaningful), true);
  }
  out.swapped = cvpca_swap_masks(opt.seed, opt.nshuff, s);
  out.signal_per_pass = Matrix(out.components, out.passes);
  out.noise_per_pass = Matrix(out.components, out.passes);
  out.total_per_pass.assign(static_cast<std::size_t>(out.passes), 0.0);
  const double S = static_cast<double>(s), K = static_cast<double>(out.components);

  if (out.solver_used == EigenSolver::lapack) {
    Matrix g;
    gram(repeats, g);                  // G <- [R1 R2]^T [R1 R2] over local neurons (2S x 2S)
    ctx.allreduce_sum(g.values());     // G <- sum over ranks
    // Passes are dealt round-robin; each entry of the per-pass tables is written by exactly one rank, so
    // summing the tables over ranks assembles them exactly.
    int mine = 0;
    for (int p = ctx.rank(); p < out.passes; p += ctx.size()) ++mine;
    Progress progress(fmt::format("cvPCA passes on rank 0 ({} of {} over {} rank{})", mine, out.passes, ctx.size(),
                                  ctx.size() == 1 ? "" : "s"),
                      static_cast<std::size_t>(mine));
    for (int p = ctx.rank(); p < out.passes; p += ctx.size()) {
      lapack_pass(g, out.swapped.data() + static_cast<std::size_t>(p) * static_cast<std::size_t>(s), out.components,
                  out.signal_per_pass.col(p).data(), out.noise_per_pass.col(p).data(),
                  &out.total_per_pass[static_cast<std::size_t>(p)]);
      progress.advance();
    }
    progress.finish();
    ctx.allreduce_sum(out.signal_per_pass.values());
    ctx.allreduce_sum(out.noise_per_pass.values());
    ctx.allreduce_sum(out.total_per_pass);
    // Gram (dsyrk), then per pass: tridiagonal reduction 4/3 S^3, back-transformation 2 S^2 K (dsyevd: S^3
    // when all vectors), C A 2 S^2 K.
    const double eig = out.components == s ? (4.0 / 3.0 + 2.0) * S * S * S : 4.0 / 3.0 * S * S * S + 2.0 * S * S * K;
    out.flops = 4.0 * S * S * static_cast<double>(n) + out.passes * (eig + 2.0 * S * S * K);
  } else {
    detail::cvpca_passes_slepc(ctx, repeats, opt, out);
  }

  // Means over passes, summed in pass order (identical on every rank and at every rank count).
  out.signal_raw.assign(static_cast<std::size_t>(out.components), 0.0);
  out.noise_raw.assign(static_cast<std::size_t>(out.components), 0.0);
  double total = 0;
  for (int p = 0; p < out.passes; ++p) {
    for (std::int64_t k = 0; k < out.components; ++k) {
      out.signal_raw[k] += out.signal_per_pass(k, p);
      out.noise_raw[k] += out.noise_per_pass(k, p);
    }
    total += out.total_per_pass[static_cast<std::size_t>(p)];
  }
  out.signal.resize(out.signal_raw.size());
  for (std::int64_t k = 0; k < out.components; ++k) {
    out.signal_raw[k] /= out.passes;
    out.noise_raw[k] /= out.passes;
    out.signal[k] = out.signal_raw[k] / (total / out.passes);
  }
  return out;
}

}  // namespace popcode
