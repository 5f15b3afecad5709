"""Import benchmark: a 10,000-neuron x 5,600-presentation float32 recording imported from .npy and from HDF5
(a MAT v7.3 file, whose bulk arrays are plain HDF5 datasets), against the disk's sequential read rate measured
with dd on the same file in the same run.

    /usr/bin/python3 bench/import/run.py [--popcode build/popcode] [--repeats 3] [--ranks 1 2] [--dir /tmp/popcode-bench-import]

Each measurement starts from a cold page cache (`echo 3 > /proc/sys/vm/drop_caches`, needs root; without it
the script says so and every number is a warm-cache number). The rate of an import is the source file's
size divided by popcode's own import time (start of the command to the renamed file, with its data fsynced),
and, beside it, by the wall time of `mpiexec -n R popcode import`, which adds MPI start-up. Two references
from the same run: dd reading the file, and dd copying it with an fsync at the end (what any durable import
must at least do). Prints one table (medians and ranges over the repeats) with both ratios.
"""
import argparse
import os
import re
import shutil
import statistics
import subprocess
import time

import h5py
import numpy as np

ap = argparse.ArgumentParser()
ap.add_argument("--popcode", default="build/popcode")
ap.add_argument("--repeats", type=int, default=3)
ap.add_argument("--ranks", type=int, nargs="+", default=[1, 2])
ap.add_argument("--dir", default="/tmp/popcode-bench-import")
ap.add_argument("--neurons", type=int, default=10000)
ap.add_argument("--presentations", type=int, default=5600)
a = ap.parse_args()

ENV = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1", OPENBLAS_NUM_THREADS="1")
os.makedirs(a.dir, exist_ok=True)
P, N = a.presentations, a.neurons
rng = np.random.default_rng(1)
resp = rng.standard_normal((P, N), dtype=np.float32)
istim = (np.arange(P) % 2800 + 1).astype(np.float64)

npy = os.path.join(a.dir, "resp.npy")
np.save(npy, resp)
np.save(os.path.join(a.dir, "istim.npy"), istim.astype(np.int64))
mat = os.path.join(a.dir, "stim_v73.mat")
with h5py.File(mat, "w", userblock_size=512) as f:
    g = f.create_group("stim")
    g.attrs["MATLAB_class"] = np.bytes_("struct")
    # MATLAB lists a struct's fields in MATLAB_fields (variable-length arrays of single characters).
    fields = ["resp", "istim"]
    g.attrs.create("MATLAB_fields", [np.array(list(n), dtype="S1") for n in fields],
                   dtype=h5py.vlen_dtype(np.dtype("S1")))
    ds = g.create_dataset("resp", data=resp.T)  # MATLAB column-major: HDF5 sees neurons x presentations
    ds.attrs["MATLAB_class"] = np.bytes_("single")
    ds = g.create_dataset("istim", data=istim.reshape(1, -1))
    ds.attrs["MATLAB_class"] = np.bytes_("double")
hdr = b"MATLAB 7.3 MAT-file, Platform: GLNXA64, Created on: bench HDF5 schema 1.00 ."
with open(mat, "r+b") as fh:
    fh.write((hdr.ljust(116, b" ") + b"\x00" * 8 + b"\x00\x02IM").ljust(512, b"\x00"))
del resp


def drop_caches():
    try:
        subprocess.run(["sync"], check=True)
        with open("/proc/sys/vm/drop_caches", "w") as fh:
            fh.write("3\n")
        return True
    except OSError:
        return False


cold = drop_caches()
if not cold:
    print("NOTE: cannot drop the page cache (not root?): all numbers below are warm-cache numbers")


def dd_rate(path):
    drop_caches()
    r = subprocess.run(["dd", f"if={path}", "of=/dev/null", "bs=16M"], capture_output=True, text=True)
    m = re.search(r"([\d.]+) s, ", r.stderr)
    return os.path.getsize(path) / float(m.group(1)) / 1e6


def copy_rate(path):
    """The floor for any import that writes what it reads and makes it durable: dd copying the file with an
    fsync at the end, from a cold cache."""
    dst = os.path.join(a.dir, "copy.bin")
    drop_caches()
    r = subprocess.run(["dd", f"if={path}", f"of={dst}", "bs=16M", "conv=fsync"], capture_output=True, text=True)
    m = re.search(r"([\d.]+) s, ", r.stderr)
    os.remove(dst)
    return os.path.getsize(path) / float(m.group(1)) / 1e6


def import_rates(ranks, args, path):
    """(rate by popcode's own timer, rate by wall time of mpiexec). popcode's timer runs from the command's
    start to the renamed, fsynced file; the wall time adds MPI start-up (~0.5 s per job here)."""
    out = os.path.join(a.dir, "out.h5")
    if os.path.exists(out):
        os.remove(out)
    drop_caches()
    t0 = time.perf_counter()
    r = subprocess.run(["mpiexec", "-n", str(ranks), "--oversubscribe", a.popcode, "-q", "import"] + args + ["--out", out],
                       check=True, env=ENV, capture_output=True, text=True)
    dt = time.perf_counter() - t0
    os.remove(out)
    m = re.search(r"MB in ([\d.]+) s\)", r.stdout)
    size = os.path.getsize(path) / 1e6
    return size / float(m.group(1)), size / dt


rows = []
for label, path, args in [("npy", npy, [npy, "--stimulus", os.path.join(a.dir, "istim.npy")]),
                          ("hdf5 (MAT v7.3)", mat, [mat, "--gray", "none"])]:
    dd = [dd_rate(path) for _ in range(a.repeats)]
    cp = [copy_rate(path) for _ in range(a.repeats)]
    for ranks in a.ranks:
        both = [import_rates(ranks, args, path) for _ in range(a.repeats)]
        rows.append((label, ranks, dd, cp, [x[0] for x in both], [x[1] for x in both]))

print(f"\n{N} neurons x {P} presentations float32 ({N * P * 4 / 1e6:.0f} MB), {a.repeats} repeats, "
      f"{'cold' if cold else 'warm'} page cache; rates in MB/s, median (min-max)")
print("| source | ranks | dd read | dd copy + fsync | popcode import | import incl. MPI start | import / dd read "
      "| import / copy |")
print("|---|---|---|---|---|---|---|---|")
med = statistics.median
for label, ranks, dd, cp, imp, wall in rows:
    f = lambda v: f"{med(v):.0f} ({min(v):.0f}-{max(v):.0f})"  # noqa: E731
    print(f"| {label} | {ranks} | {f(dd)} | {f(cp)} | {f(imp)} | {f(wall)} | {med(imp) / med(dd):.2f} "
          f"| {med(imp) / med(cp):.2f} |")
shutil.rmtree(a.dir)
