// popcode: entry point. Initialises MPI, PETSc/SLEPc and HDF5 error handling, runs the command line, and
// maps failures to exit codes (see src/errors.hpp). An error raised on every rank together ends the job
// cleanly; an error raised on one rank only aborts the whole job with its exit code.
#include <mpi.h>
#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <exception>

#include "io/h5.hpp"
#include "solvers/petsc_env.hpp"
#include "src/blas_threads.hpp"
#include "src/cli.hpp"
#include "src/context.hpp"
#include "src/log.hpp"

namespace {

void on_termination(int sig) {
  static const char msg[] =
      "[popcode] terminated by a signal; completed stages are kept in the results file, rerun the job to resume\n";
  const ssize_t ignored = write(STDERR_FILENO, msg, sizeof msg - 1);
  (void)ignored;
  std::signal(sig, SIG_DFL);
  std::raise(sig);
}

int fail(const popcode::Context& ctx, const char* what, popcode::ExitCode code, bool collective) {
  if (collective || ctx.size() == 1) {
    if (ctx.root()) popcode::log::write_collective_error(what);
    return static_cast<int>(code);
  }
  popcode::log::write_error(what);
  MPI_Abort(ctx.comm(), static_cast<int>(code));
  return static_cast<int>(code);
}

}  // namespace

int main(int argc, char** argv) {
  MPI_Init(&argc, &argv);
  std::signal(SIGTERM, on_termination);
  std::signal(SIGUSR1, on_termination);
  int code = 0;
  {
    const popcode::Context ctx(MPI_COMM_WORLD);
    popcode::log::configure(ctx.rank(), ctx.size(), popcode::log::Level::normal);
    popcode::h5::silence_error_stack();
    popcode::configure_blas_threads();
    popcode::PetscEnvironment petsc(MPI_COMM_WORLD);
    try {
      code = popcode::run_cli(ctx, argc, argv);
    } catch (const popcode::Error& e) {
      code = fail(ctx, e.what(), e.code(), e.collective());
    } catch (const std::exception& e) {
      code = fail(ctx, e.what(), popcode::ExitCode::internal, false);
    }
  }
  MPI_Finalize();
  return code;
}
