"""Import benchmark: a 10,000-neuron x 5,600-presentation float32 recording imported from .npy and from HDF5
(a MAT v7.3 file, whose bulk arrays are plain HDF5 datasets), against the disk's sequential read rate measured
with dd on the same file in the same run.

    /usr/bin/python3 bench/import/run.py [--popcode build/popcode] [--repeats 3] [--ranks 1 2] [--dir /tmp/popcode-bench-import]

Each measurement starts from a cold page cache (`echo 3 > /proc/sys/vm/drop_caches`, needs root; without it
the script says so and every number is a warm-cache number). The rate of an import is the source file's
size divided by the wall time of `mpiexec -n R popcode import`, which includes writing the recording and
MPI start-up. Prints one table (medians and ranges over the repeats) and the ratio import rate / dd rate.
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


def import_rate(ranks, args, path):
    out = os.path.join(a.dir, "out.h5")
    if os.path.exists(out):
        os.remove(out)
    drop_caches()
    t0 = time.perf_counter()
    subprocess.run(["mpiexec", "-n", str(ranks), "--oversubscribe", a.popcode, "-q", "import"] + args + ["--out", out],
                   check=True, env=ENV)
    dt = time.perf_counter() - t0
    os.remove(out)
    return os.path.getsize(path) / dt / 1e6


rows = []
for label, path, args in [("npy", npy, [npy, "--stimulus", os.path.join(a.dir, "istim.npy")]),
                          ("hdf5 (MAT v7.3)", mat, [mat, "--gray", "none"])]:
    dd = [dd_rate(path) for _ in range(a.repeats)]
    for ranks in a.ranks:
        imp = [import_rate(ranks, args, path) for _ in range(a.repeats)]
        rows.append((label, ranks, dd, imp))

print(f"\n{N} neurons x {P} presentations float32 ({N * P * 4 / 1e6:.0f} MB), {a.repeats} repeats, "
      f"{'cold' if cold else 'warm'} page cache; rates in MB/s, median (min-max)")
print("| source | ranks | dd read | popcode import | import / dd |")
print("|---|---|---|---|---|")
for label, ranks, dd, imp in rows:
    f = lambda v: f"{statistics.median(v):.0f} ({min(v):.0f}-{max(v):.0f})"  # noqa: E731
    print(f"| {label} | {ranks} | {f(dd)} | {f(imp)} | {statistics.median(imp) / statistics.median(dd):.2f} |")
shutil.rmtree(a.dir)
