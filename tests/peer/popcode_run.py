"""Runs a popcode job under mpiexec for the peer tests; exits the test with popcode's output on failure."""
import os
import subprocess
import sys


def run_job(popcode, mpiexec, ranks, job, label):
    env = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1", OPENBLAS_NUM_THREADS="1")
    r = subprocess.run([mpiexec, "-n", str(ranks), "--oversubscribe", popcode, "run", job], env=env, capture_output=True,
                       text=True)
    if r.returncode != 0:
        print(r.stdout[-3000:], r.stderr[-3000:])
        sys.exit(f"popcode failed at {ranks} ranks ({label})")
