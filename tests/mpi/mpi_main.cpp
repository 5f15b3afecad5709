// MPI tests: every rank runs every test; only rank 0 prints. A failure on any rank fails the run.
#include <gtest/gtest.h>
#include <mpi.h>

#include "io/h5.hpp"
#include "solvers/petsc_env.hpp"
#include "src/blas_threads.hpp"
#include "src/log.hpp"

int main(int argc, char** argv) {
  MPI_Init(&argc, &argv);
  ::testing::InitGoogleTest(&argc, argv);
  int rank = 0, size = 1;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  popcode::log::configure(rank, size, popcode::log::Level::quiet);
  popcode::h5::silence_error_stack();
  popcode::configure_blas_threads();
  if (rank != 0) {
    auto& listeners = ::testing::UnitTest::GetInstance()->listeners();
    delete listeners.Release(listeners.default_result_printer());
  }
  int rc = 0;
  {
    popcode::PetscEnvironment petsc(MPI_COMM_WORLD);
    rc = RUN_ALL_TESTS();
  }
  int worst = rc;
  MPI_Allreduce(&rc, &worst, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
  MPI_Finalize();
  return worst;
}
