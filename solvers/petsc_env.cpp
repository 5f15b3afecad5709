#include "solvers/petsc_env.hpp"

#include <fmt/format.h>
#include <slepcsys.h>

#include "src/errors.hpp"

namespace popcode {

PetscEnvironment::PetscEnvironment(MPI_Comm comm) {
  PETSC_COMM_WORLD = comm;
  static char name[] = "popcode";
  static char no_handler[] = "-no_signal_handler";
  static char* argv_storage[] = {name, no_handler, nullptr};
  int argc = 2;
  char** argv = argv_storage;
  petsc_check(SlepcInitialize(&argc, &argv, nullptr, nullptr), "SlepcInitialize");
  // Errors come back as codes; popcode turns them into exceptions with context.
  petsc_check(PetscPushErrorHandler(PetscReturnErrorHandler, nullptr), "PetscPushErrorHandler");
}

PetscEnvironment::~PetscEnvironment() { SlepcFinalize(); }

void petsc_check(PetscErrorCode ierr, const char* what) {
  if (ierr == 0) return;
  const char* text = nullptr;
  PetscErrorMessage(ierr, &text, nullptr);
  throw InternalError(fmt::format("{} failed: PETSc error {}{}{}", what, static_cast<int>(ierr), text ? ": " : "",
                                  text ? text : ""));
}

}  // namespace popcode
