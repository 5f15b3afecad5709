"""Helpers of the decoder stage tests: a check list, job files, and popcode runs that must exit as expected."""
import os
import subprocess
import sys

ENV = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1", OPENBLAS_NUM_THREADS="1")


class Checks:
    def __init__(self):
        self.failures = []

    def __call__(self, ok, what):
        print(("ok:   " if ok else "FAIL: ") + what)
        if not ok:
            self.failures.append(what)

    def finish(self, name):
        if self.failures:
            sys.exit(f"{len(self.failures)} check(s) failed")
        print(f"{name}: all checks passed")


def write_job(tmp, name, stages, recording, stage, options, simulate=""):
    """A job `name` running `stages` on `recording`, with `options` (TOML lines) for `stage`."""
    path = os.path.join(tmp, f"{name}.toml")
    with open(path, "w") as f:
        f.write(f'[job]\nname = "{name}"\nstages = {stages}\nrecording = "{recording}"\nresults = "{tmp}/{name}.h5"\n')
        if simulate:
            f.write(f"[simulate]\n{simulate}\n")
        if options:
            f.write(f"[{stage}]\n{options}\n")
    return path


def popcode(popcode_bin, mpiexec, ranks, job, env=None, expect=0):
    r = subprocess.run([mpiexec, "-n", str(ranks), "--oversubscribe", popcode_bin, "run", job], env=env or ENV,
                       capture_output=True, text=True)
    if r.returncode != expect:
        print(r.stdout[-3000:], r.stderr[-3000:])
        sys.exit(f"popcode exited {r.returncode} (expected {expect}) at {ranks} ranks on {job}")
    return r
