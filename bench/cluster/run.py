#!/usr/bin/env python3
"""k-means benchmark (issue 3): popcode's cluster stage (k = 8, both repeats as points, standardised) on
5,600 points (2,800 images x 2 repeats) of 10,000 neurons at 1 and 2 ranks, against sklearn KMeans
(algorithm="lloyd", n_init=1) started from the same k-means++ centres popcode chose (/cluster/init_points),
with 1 BLAS/OpenMP thread (as 1 rank) and 2 (as 2 ranks). The floor: popcode's Lloyd iterations, each one
S x k x N products (2 S k N flops), at the dgemm rate measured in this run, per core; and, because Lloyd at
k = 8 is bound by memory rather than flops, the read floor: each iteration reads the S x N block once
(8 S N bytes), at the single-thread read rate measured in this run (numpy summing a 512 MiB array), per core.
Medians and ranges of REPEATS runs.

Usage: /usr/bin/python3 bench/cluster/run.py [--build build] [--repeats 3] [--out bench/out]
Writes OUT/cluster.json and OUT/cluster.md.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time

import h5py

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(REPO, "bench", "cvpca"))
from run import dgemm_gflops, env, fmt, popcode, summary  # noqa: E402

PEER = r"""
import json, sys, time
import h5py, numpy as np
from sklearn.cluster import KMeans
with h5py.File(sys.argv[1], "r") as f:
    r = f["preprocess/repeat_responses"][()]
    init = f["cluster/init_points"][()]
X = np.concatenate([r[0], r[1]], axis=0)
del r
X = (X - X.mean(axis=0)) / X.std(axis=0)
t = time.perf_counter()
km = KMeans(n_clusters=len(init), init=X[init], n_init=1, algorithm="lloyd", max_iter=300, tol=1e-4).fit(X)
print(json.dumps({"seconds": time.perf_counter() - t, "inertia": float(km.inertia_), "iterations": int(km.n_iter_)}))
"""


def read_gbs(repeats=5):
    """Single-thread memory read rate: numpy summing a 512 MiB float64 array (best of `repeats`)."""
    code = ("import numpy as np,time\n"
            "a=np.ones(1<<26);a.sum();best=0\n"
            f"for _ in range({repeats}):\n t=time.perf_counter();a.sum();best=max(best,a.nbytes/(time.perf_counter()-t)/1e9)\n"
            "print(best)")
    out = subprocess.run([sys.executable, "-c", code], check=True, env=env(1), capture_output=True, text=True)
    return float(out.stdout)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default=os.path.join(REPO, "build"))
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--out", default=os.path.join(REPO, "bench", "out"))
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    binary = os.path.join(a.build, "popcode")
    recording = os.path.join(a.out, "cluster_recording.h5")
    popcode(binary, 2, "simulate", "--out", recording, "--neurons", "10000", "--images", "2800", "--seed", "7")
    results = {"date": time.strftime("%Y-%m-%d"), "points": 5600, "neurons": 10000, "k": 8}
    rates, reads, runs, peer = [], [], {}, {}
    reference = None
    for name, ranks in [("popcode_1rank", 1), ("popcode_2ranks", 2)]:
        runs[name] = []
        for r in range(a.repeats):
            rates.append(dgemm_gflops())
            reads.append(read_gbs())
            out = os.path.join(a.out, f"cluster_{name}_{r}.h5")
            popcode(binary, ranks, "cluster", "--in", recording, "--out", out, "--force", "--k", "8",
                    "--set", "preprocess.save_responses=true")
            with h5py.File(out, "r") as f:
                st = f["provenance/stages/cluster"]
                runs[name].append({"seconds": float(st.attrs["wall_s"]), "inertia": float(f["cluster/inertia"][()]),
                                   "lloyd_seconds": float(f["cluster/lloyd_seconds"][()]),
                                   "iterations": int(f["cluster/iterations"][()]),
                                   "peak_rss_mib": float(st["per_rank"][:, 4].max()) / 2**20})
            reference = reference or out
            print(f"{name} run {r}: {runs[name][-1]['seconds']:.2f} s, inertia {runs[name][-1]['inertia']:.6g}, "
                  f"{runs[name][-1]['iterations']} iterations", flush=True)
    for threads in (1, 2):
        peer[threads] = []
        for r in range(a.repeats):
            out = subprocess.run([sys.executable, "-c", PEER, reference], check=True, env=env(threads), capture_output=True,
                                 text=True)
            peer[threads].append(json.loads(out.stdout))
            print(f"sklearn {threads} thread(s) run {r}: {peer[threads][-1]['seconds']:.2f} s, inertia "
                  f"{peer[threads][-1]['inertia']:.6g}, {peer[threads][-1]['iterations']} iterations", flush=True)
    rate = statistics.median(rates)
    read = statistics.median(reads)
    rows = []
    for name, cores in [("popcode_1rank", 1), ("popcode_2ranks", 2)]:
        s = summary([x["seconds"] for x in runs[name]])
        ls = summary([x["lloyd_seconds"] for x in runs[name]])
        p = summary([x["seconds"] for x in peer[cores]])
        iters = runs[name][0]["iterations"]
        floor = iters * 2.0 * 5600 * 8 * 10000 / (rate * 1e9 * cores)
        read_floor = iters * 8.0 * 5600 * 10000 / (read * 1e9 * cores)
        rel = abs(runs[name][0]["inertia"] - peer[cores][0]["inertia"]) / peer[cores][0]["inertia"]
        results[name] = {"seconds": s, "lloyd_seconds": ls, "peer_seconds": p, "floor_seconds": floor, "read_floor_seconds": read_floor,
                         "inertia_rel_diff": rel,
                         "peak_rss_mib": max(x["peak_rss_mib"] for x in runs[name]), "iterations": iters,
                         "peer_iterations": peer[cores][0]["iterations"]}
        rows.append((name, cores, fmt(s), f"{floor:.3f}", f"{ls['median'] / floor:.1f}", f"{read_floor:.2f}",
                     f"{ls['median'] / read_floor:.1f}", f"{p['median'] / read_floor:.1f}", fmt(p), f"{p['median'] / s['median']:.1f}",
                     fmt(ls), f"{p['median'] / ls['median']:.1f}",
                     f"{results[name]['peak_rss_mib']:.0f}", f"{iters} / {peer[cores][0]['iterations']}", f"{rel:.1e}"))
    results["dgemm_gflops_per_core"] = summary(rates)
    results["read_gbs_per_core"] = summary(reads)
    results["two_rank_efficiency"] = results["popcode_1rank"]["seconds"]["median"] / (2 * results["popcode_2ranks"]["seconds"]["median"])
    with open(os.path.join(a.out, "cluster.json"), "w") as f:
        json.dump(results, f, indent=1, default=float)
    lines = ["| run | cores | popcode stage s, median (range) | Lloyd flop floor s | popcode Lloyd / flop floor | Lloyd read floor s | "
             "popcode Lloyd / read floor | sklearn / read floor | sklearn s, median (range) | speed-up vs sklearn | peak MiB per rank | "
             "iterations popcode / sklearn | inertia relative difference |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    lines += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    lines.append("")
    lines.append(f"dgemm rate per core (median of {len(rates)}): {rate:.1f} GFLOP/s; read rate per core (median of "
                 f"{len(reads)}): {read:.1f} GB/s; 2-rank efficiency "
                 f"{results['two_rank_efficiency']:.2f}")
    with open(os.path.join(a.out, "cluster.md"), "w") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
