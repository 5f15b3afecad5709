#!/usr/bin/env python3
"""k-means benchmark (issue 3): popcode's cluster stage (k = 8, both repeats as points, standardised) on
5,600 points (2,800 images x 2 repeats) of 10,000 neurons at 1 and 2 ranks, against sklearn KMeans
(n_init=1, both algorithm="lloyd" and algorithm="elkan") started from the same k-means++ centres popcode
chose (/cluster/init_points), with 1 BLAS/OpenMP thread (as 1 rank) and 2 (as 2 ranks). popcode runs with its
triangle-inequality bounds (the default) and without them (`cluster.bounds=false`, plain Lloyd). Every
repeat runs all configurations in turn, so a slow stretch of this shared machine falls on all of them.

The time compared: popcode's Lloyd iterations (/cluster/lloyd_seconds) against sklearn's `fit` from the
given centres (no standardisation, no initialisation); the stage time (standardisation moments, k-means++,
Lloyd, final inertia) is reported beside it. Floors, per core: each iteration's S x k x N products (2 S k N
flops) at the dgemm rate measured in this run; and one read of the S x N block per iteration (8 S N bytes) at
the single-thread read rate measured in this run (numpy summing a 512 MiB array), the floor of any method
that reads every point every iteration (plain Lloyd, and sklearn's Elkan, which re-sums every point).
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
from run import dgemm_gflops, env, popcode, summary  # noqa: E402

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
km = KMeans(n_clusters=len(init), init=X[init], n_init=1, algorithm=sys.argv[2], max_iter=300, tol=1e-4).fit(X)
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


def fmt2(s):
    return f"{s['median']:.2f} ({s['min']:.2f}-{s['max']:.2f})"


POPCODE_RUNS = [("popcode_1rank", 1, True), ("popcode_1rank_plain", 1, False), ("popcode_2ranks", 2, True),
                ("popcode_2ranks_plain", 2, False)]
PEER_RUNS = [("lloyd", 1), ("elkan", 1), ("lloyd", 2), ("elkan", 2)]


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
    rates, reads = [], []
    runs = {name: [] for name, _, _ in POPCODE_RUNS}
    peer = {f"sklearn_{alg}_{t}": [] for alg, t in PEER_RUNS}
    reference = None
    labels = {}
    for r in range(a.repeats):
        rates.append(dgemm_gflops())
        reads.append(read_gbs())
        for name, ranks, bounds in POPCODE_RUNS:
            out = os.path.join(a.out, f"cluster_{name}_{r}.h5")
            popcode(binary, ranks, "cluster", "--in", recording, "--out", out, "--force", "--k", "8",
                    "--set", "preprocess.save_responses=true", "--set", f"cluster.bounds={'true' if bounds else 'false'}")
            with h5py.File(out, "r") as f:
                st = f["provenance/stages/cluster"]
                runs[name].append({"seconds": float(st.attrs["wall_s"]), "inertia": float(f["cluster/inertia"][()]),
                                   "lloyd_seconds": float(f["cluster/lloyd_seconds"][()]),
                                   "iterations": int(f["cluster/iterations"][()]),
                                   "skipped": int(f["cluster/lloyd_points_skipped"][()]),
                                   "peak_rss_mib": float(st["per_rank"][:, 4].max()) / 2**20})
                labels[name] = f["cluster/labels"][()]
            if name.endswith("_plain"):  # the bounds must not change the labels
                runs[name][-1]["labels_equal_with_bounds"] = bool((labels[name] == labels[name[:-len("_plain")]]).all())
            reference = reference or out
            x = runs[name][-1]
            print(f"{name} run {r}: stage {x['seconds']:.2f} s, Lloyd {x['lloyd_seconds']:.2f} s, inertia {x['inertia']:.10g}, "
                  f"{x['iterations']} iterations, {x['skipped']} point reads skipped"
                  + (f", labels equal with bounds: {x['labels_equal_with_bounds']}" if name.endswith("_plain") else ""), flush=True)
        for alg, threads in PEER_RUNS:
            out = subprocess.run([sys.executable, "-c", PEER, reference, alg], check=True, env=env(threads),
                                 capture_output=True, text=True)
            key = f"sklearn_{alg}_{threads}"
            peer[key].append(json.loads(out.stdout))
            print(f"sklearn {alg} {threads} thread(s) run {r}: {peer[key][-1]['seconds']:.2f} s, inertia "
                  f"{peer[key][-1]['inertia']:.10g}, {peer[key][-1]['iterations']} iterations", flush=True)
    rate = statistics.median(rates)
    read = statistics.median(reads)
    rows = []
    for name, cores, bounds in POPCODE_RUNS:
        s = summary([x["seconds"] for x in runs[name]])
        ls = summary([x["lloyd_seconds"] for x in runs[name]])
        pl = summary([x["seconds"] for x in peer[f"sklearn_lloyd_{cores}"]])
        pe = summary([x["seconds"] for x in peer[f"sklearn_elkan_{cores}"]])
        best_peer = min(pl["median"], pe["median"])
        iters = runs[name][0]["iterations"]
        floor = iters * 2.0 * 5600 * 8 * 10000 / (rate * 1e9 * cores)
        read_floor = iters * 8.0 * 5600 * 10000 / (read * 1e9 * cores)
        ref = peer[f"sklearn_lloyd_{cores}"][0]
        rel = abs(runs[name][0]["inertia"] - ref["inertia"]) / ref["inertia"]
        skipped = runs[name][0]["skipped"] / (iters * 5600)
        results[name] = {"seconds": s, "lloyd_seconds": ls, "sklearn_lloyd_seconds": pl, "sklearn_elkan_seconds": pe,
                         "floor_seconds": floor, "read_floor_seconds": read_floor, "inertia_rel_diff": rel,
                         "skipped_fraction": skipped, "bounds": bounds,
                         "peak_rss_mib": max(x["peak_rss_mib"] for x in runs[name]), "iterations": iters,
                         "peer_iterations": [ref["iterations"], peer[f"sklearn_elkan_{cores}"][0]["iterations"]]}
        rows.append((name, cores, "on" if bounds else "off", fmt2(s), fmt2(ls), f"{100 * skipped:.0f}%", f"{floor:.3f}",
                     f"{read_floor:.2f}", f"{ls['median'] / read_floor:.2f}", fmt2(pl), fmt2(pe),
                     f"{pl['median'] / ls['median']:.1f}", f"{pe['median'] / ls['median']:.1f}",
                     f"{best_peer / ls['median']:.1f}", f"{results[name]['peak_rss_mib']:.0f}",
                     f"{iters} / {ref['iterations']} / {peer[f'sklearn_elkan_{cores}'][0]['iterations']}", f"{rel:.1e}"))
    results["labels_equal_with_and_without_bounds"] = all(x["labels_equal_with_bounds"] for name, _, b in POPCODE_RUNS
                                                          if not b for x in runs[name])
    results["dgemm_gflops_per_core"] = summary(rates)
    results["read_gbs_per_core"] = summary(reads)
    results["two_rank_efficiency"] = (results["popcode_1rank"]["lloyd_seconds"]["median"]
                                      / (2 * results["popcode_2ranks"]["lloyd_seconds"]["median"]))
    results["two_rank_stage_efficiency"] = (results["popcode_1rank"]["seconds"]["median"]
                                            / (2 * results["popcode_2ranks"]["seconds"]["median"]))
    with open(os.path.join(a.out, "cluster.json"), "w") as f:
        json.dump(results, f, indent=1, default=float)
    lines = ["| run | cores | bounds | stage s | Lloyd s | point reads skipped | Lloyd flop floor s | Lloyd read floor s | "
             "Lloyd / read floor | sklearn lloyd s | sklearn elkan s | speed-up vs lloyd | speed-up vs elkan | "
             "speed-up vs the faster | peak MiB per rank | iterations popcode / lloyd / elkan | inertia rel. diff. vs lloyd |",
             "|" + "---|" * 17]
    lines += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    lines.append("")
    lines.append(f"Times: median (range) of {a.repeats} interleaved repeats. dgemm rate per core (median of {len(rates)}): "
                 f"{rate:.1f} GFLOP/s; read rate per core (median of {len(reads)}): {read:.1f} GB/s; 2-rank efficiency "
                 f"with bounds {results['two_rank_efficiency']:.2f} for Lloyd, {results['two_rank_stage_efficiency']:.2f} for the stage; labels with and without bounds equal in every repeat: "
                 f"{results['labels_equal_with_and_without_bounds']}")
    with open(os.path.join(a.out, "cluster.md"), "w") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
