#!/usr/bin/env bash
# README command 1: install what is missing, build, and run the embedded default job (jobs/demo.toml:
# simulate -> preprocess -> spectrum) on 2 MPI ranks. Results: demo_results.h5 in the repository root.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
bash scripts/build.sh build -DPOPCODE_BUILD_TESTS=OFF
source scripts/mpi-env.sh
mpirun -n 2 --oversubscribe build/popcode run jobs/demo.toml "$@"
