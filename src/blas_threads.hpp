#pragma once
// OpenBLAS threading. popcode runs one MPI rank per core, so BLAS runs single-threaded unless the user
// asks otherwise with POPCODE_BLAS_THREADS (or OPENBLAS_NUM_THREADS); this also keeps the replicated
// computations of the simulator bitwise identical whatever the rank count.
#include <string>

namespace popcode {

// Sets the BLAS thread count (call once at start-up). Returns the count in effect (0 if unknown).
int configure_blas_threads();
// "OpenBLAS 0.3.21 ... (1 thread)" or a note that the BLAS is not OpenBLAS.
std::string blas_description();

}  // namespace popcode
