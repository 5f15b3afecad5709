// Unit tests run as one MPI process (some units use a Context or PETSc).
#include <gtest/gtest.h>
#include <mpi.h>

#include "io/h5.hpp"
#include "solvers/petsc_env.hpp"
#include "src/blas_threads.hpp"

int main(int argc, char** argv) {
  MPI_Init(&argc, &argv);
  ::testing::InitGoogleTest(&argc, argv);
  popcode::h5::silence_error_stack();
  popcode::configure_blas_threads();
  int rc = 0;
  {
    popcode::PetscEnvironment petsc(MPI_COMM_WORLD);
    rc = RUN_ALL_TESTS();
  }
  MPI_Finalize();
  return rc;
}
