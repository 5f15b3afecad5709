#pragma once
// PETSc/SLEPc start-up and error checking.
//
// popcode initialises MPI itself, then SLEPc (and with it PETSc) on the same communicator. PETSc's own
// signal handler is switched off (popcode reports errors itself, and sanitizers need the signals); PETSc
// options still come from the PETSC_OPTIONS environment variable, e.g. PETSC_OPTIONS="-svd_type trlanczos".
#include <mpi.h>
#include <petscsys.h>

namespace popcode {

class PetscEnvironment {
 public:
  explicit PetscEnvironment(MPI_Comm comm);
  ~PetscEnvironment();
  PetscEnvironment(const PetscEnvironment&) = delete;
  PetscEnvironment& operator=(const PetscEnvironment&) = delete;
};

// Throws InternalError naming `what` and PETSc's message when `ierr` is not zero.
void petsc_check(PetscErrorCode ierr, const char* what);

}  // namespace popcode
