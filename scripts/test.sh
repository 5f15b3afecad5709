#!/usr/bin/env bash
# README command 2 (and CI): install what is missing, build, and run the whole test suite, then build the
# unit and MPI tests with AddressSanitizer + UndefinedBehaviorSanitizer and run them again.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh --test
source scripts/mpi-env.sh
start=$(date +%s)
# With CUDA and NCCL on the machine (no GPU needed), the NCCL gradient reduction is compiled and linked too;
# at run time without a GPU the trainer runs on the CPU and says so.
gpu_flags=()
if [[ -x /usr/local/cuda/bin/nvcc && -f /usr/local/cuda/include/nccl.h ]]; then
  gpu_flags=(-DPOPCODE_WITH_CUDA=ON -DPOPCODE_WITH_NCCL=ON)
fi
bash scripts/build.sh build "${gpu_flags[@]}"
(cd build && ctest --output-on-failure --timeout 900)
echo "test.sh: main build and tests took $(( $(date +%s) - start )) s"

# Sanitizer build of the unit and MPI tests. Open MPI and PETSc keep allocations until exit on purpose,
# so leak checking is off; every other ASan/UBSan finding fails the run. Built without libtorch: its headers
# make each of the 11 translation units that include them take about 30 s here, which CI's 30 minutes cannot
# spare, so the trainer's MPI tests (mpi_train) run in the main suite only.
cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DPOPCODE_SANITIZE=address,undefined -DPOPCODE_WITH_TORCH=OFF >/dev/null
cmake --build build-asan -j "$(nproc)" --target popcode_unit_tests mpi_partition mpi_linalg mpi_io mpi_geometry
export ASAN_OPTIONS=detect_leaks=0:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
# 1 and 3 ranks (3 gives uneven blocks); the 2-rank runs are in the main suite above, and dropping them here
# keeps CI under its 30 minutes.
(cd build-asan && ctest --output-on-failure -L 'unit|mpi' -E '_np2$' --timeout 900)
unset ASAN_OPTIONS UBSAN_OPTIONS

# libFuzzer targets of the binary readers (npy, npz, pickle, MAT, Sensorium meta), a bounded time each.
FUZZ_SECONDS=${FUZZ_SECONDS:-6} bash tests/fuzz/run.sh build-fuzz
echo "test.sh: all tests passed in $(( $(date +%s) - start )) s"
