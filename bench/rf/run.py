#!/usr/bin/env python3
"""Receptive-field benchmark (issue 3): popcode's rf stage (reduced-rank regression as fitLowRankRFs /
CanonCor2 at rank 25 of 100 response PCs, the pixel ridge and the STA, with every neuron's three maps) on
10,000 neurons x 2,800 images (5,600 stimulus vectors) of 36 x 64 px at 1 and 2 ranks, against the same
three fits in NumPy as the anchor computes them: response PCs from the eigen-decomposition of Y Y^T (svdecon),
CanonCor2 with the explicit pixels x pixels covariance and its inverse square root (eigh), the ridge by
np.linalg.solve in pixel space, the STA by one product; with 1 BLAS thread (as 1 rank) and 2 (as 2 ranks).
The floor: the stage's BLAS-3 flops (the S x S Gram of the responses, the STA, ridge and RRR maps, the image
SVD) at the dgemm rate measured in this run, per core. Medians and ranges of REPEATS runs; each repeat runs
every popcode configuration and then the peer at 1 and 2 threads, in turn.

Usage: /usr/bin/python3 bench/rf/run.py [--build build] [--repeats 3] [--out bench/out]
Writes OUT/rf.json and OUT/rf.md.
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
with h5py.File(sys.argv[1], "r") as f:
    r = f["preprocess/repeat_responses"][()]
    ids = f["rf/image_ids"][()]
with h5py.File(sys.argv[2], "r") as f:
    imgs = f["images"][()].astype(float)
t = time.perf_counter()
s = len(ids)
x = imgs[ids].reshape(s, -1).T
x = x - x.mean()
x = x / np.linalg.norm(x, axis=0)
p = x.shape[0]
r1, r2 = r[0], r[1]
del r
y = 0.5 * (r1 + r2)
b0 = y.mean(0)
y -= b0
ntr = (s + 1) // 2
w, a_ = np.linalg.eigh(y @ y.T)                  # svdecon: eigen-decomposition of Y Y^T
order = np.argsort(w)[::-1][:100]
sv = np.sqrt(np.maximum(w[order], 0))
a_ = a_[:, order]
v = a_ * sv
c = (y.T @ a_) / sv                              # neuron loadings
big = np.cov(np.hstack([x[:, :ntr].T, v[:ntr]]).T)
cxx, cyx = big[:p, :p], big[p:, :p]
mu = 0.005 * np.trace(cxx) / p
ew, eu = np.linalg.eigh(cxx + mu * np.eye(p))
cxxmh = (eu / np.sqrt(ew)) @ eu.T
d, s2, ct = np.linalg.svd(cyx @ cxxmh, full_matrices=False)
b = cxxmh @ ct.T[:, :25]
a = d[:, :25] * s2[:25]
rrr = (b @ a.T) @ c.T                            # P x N maps
xte = x[:, ntr:]
z = xte.T @ b
rt1, rt2 = r1[ntr:] - b0, r2[ntr:] - b0
sweep = []
pred = np.zeros_like(rt1)
for j in range(25):
    pred += np.outer(z[:, j], c @ a[:, j])
    sweep.append(1 - np.sum((rt1 - pred) * (rt2 - pred)) / np.sum(rt1 * rt2))
xc = x[:, :ntr] - x[:, :ntr].mean(1, keepdims=True)
ytr = y[:ntr] - y[:ntr].mean(0)
cov_x = xc @ xc.T / (ntr - 1)
beta = np.linalg.solve(cov_x + 10 * np.trace(cov_x) / p * np.eye(p), xc @ ytr / (ntr - 1))
xall = x - x.mean(1, keepdims=True)
wts = y - y.min(0)
sta = (xall @ wts) / wts.sum(0)
print(json.dumps({"seconds": time.perf_counter() - t, "rank_sweep_last": float(sweep[-1])}))
"""


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default=os.path.join(REPO, "build"))
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--out", default=os.path.join(REPO, "bench", "out"))
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    binary = os.path.join(a.build, "popcode")
    recording = os.path.join(a.out, "rf_recording.h5")
    popcode(binary, 2, "simulate", "--out", recording, "--neurons", "10000", "--images", "2800", "--seed", "7")
    s, n, p, ntr, rank, pcs = 2800, 10000, 36 * 64, 1400, 25, 100
    # BLAS-3 flops of the stage: Gram (S^2 N), STA (2 P S N), ridge (2 r ntr N + 2 P r N), RRR maps (2 P rank N + 2 N pcs rank),
    # the image SVD (about 6 ntr^2 P), the test predictions (2 N (S - ntr) rank + 2 P (S - ntr) N for the ridge).
    flops = s * s * n + 2 * p * s * n + 2 * ntr * ntr * n + 2 * p * ntr * n + 2 * p * rank * n + 6 * ntr * ntr * p \
        + 2 * n * (s - ntr) * rank + 2 * p * (s - ntr) * n
    results = {"date": time.strftime("%Y-%m-%d"), "images": s, "neurons": n, "pixels": p, "flops": flops}
    rates = []
    reference = None
    # Each configuration at 1 and 2 ranks: the stage as the jobs run it (every neuron's three maps written,
    # 552 MB, and synced), and without the maps (store_maps = false), which is what the peer does and leaves
    # out the local disk, whose bandwidth does not grow with ranks on one machine.
    configs = [("popcode_1rank", 1, "true"), ("popcode_2ranks", 2, "true"),
               ("popcode_1rank_nomaps", 1, "false"), ("popcode_2ranks_nomaps", 2, "false")]
    runs = {name: [] for name, _, _ in configs}
    peer = {1: [], 2: []}
    # Every repeat runs all configurations and then the peer, so a slow stretch of this shared machine falls
    # on all of them rather than on one.
    for r in range(a.repeats):
        for name, ranks, maps in configs:
            rates.append(dgemm_gflops())
            out = os.path.join(a.out, f"rf_{name}_{r}.h5")
            popcode(binary, ranks, "rf", "--in", recording, "--out", out, "--force", "--set", "preprocess.save_responses=true",
                    "--set", f"rf.store_maps={maps}")
            with h5py.File(out, "r") as f:
                st = f["provenance/stages/rf"]
                runs[name].append({"seconds": float(st.attrs["wall_s"]),
                                   "rank_sweep_last": float(f["rf/rrr/rank_sweep"][-1]),
                                   "peak_rss_mib": float(st["per_rank"][:, 4].max()) / 2**20})
            reference = reference or out
            print(f"{name} run {r}: {runs[name][-1]['seconds']:.2f} s, normalised VE {runs[name][-1]['rank_sweep_last']:.6f}",
                  flush=True)
        for threads in (1, 2):
            out = subprocess.run([sys.executable, "-c", PEER, reference, recording], check=True, env=env(threads),
                                 capture_output=True, text=True)
            peer[threads].append(json.loads(out.stdout))
            print(f"NumPy {threads} thread(s) run {r}: {peer[threads][-1]['seconds']:.2f} s, normalised VE "
                  f"{peer[threads][-1]['rank_sweep_last']:.6f}", flush=True)
    rate = statistics.median(rates)
    rows = []
    for name, cores, _ in configs:
        sm = summary([x["seconds"] for x in runs[name]])
        pm = summary([x["seconds"] for x in peer[cores]])
        floor = flops / (rate * 1e9 * cores)
        diff = abs(runs[name][0]["rank_sweep_last"] - peer[cores][0]["rank_sweep_last"])
        results[name] = {"seconds": sm, "peer_seconds": pm, "floor_seconds": floor, "ve_abs_diff": diff,
                         "peak_rss_mib": max(x["peak_rss_mib"] for x in runs[name])}
        rows.append((name, cores, fmt(sm), f"{floor:.2f}", f"{sm['median'] / floor:.1f}", fmt(pm), f"{pm['median'] / sm['median']:.1f}",
                     f"{results[name]['peak_rss_mib']:.0f}", f"{diff:.1e}"))
    results["dgemm_gflops_per_core"] = summary(rates)
    for suffix in ("", "_nomaps"):
        results["two_rank_efficiency" + suffix] = (results["popcode_1rank" + suffix]["seconds"]["median"]
                                                   / (2 * results["popcode_2ranks" + suffix]["seconds"]["median"]))
    with open(os.path.join(a.out, "rf.json"), "w") as f:
        json.dump(results, f, indent=1, default=float)
    lines = ["| run | cores | popcode s, median (range) | BLAS floor s | popcode / floor | NumPy s, median (range) | "
             "speed-up vs NumPy | peak MiB per rank | normalised VE difference |",
             "|---|---|---|---|---|---|---|---|---|"]
    lines += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    lines.append("")
    lines.append(f"dgemm rate per core (median of {len(rates)}): {rate:.1f} GFLOP/s; 2-rank efficiency "
                 f"{results['two_rank_efficiency']:.2f} with the maps written, "
                 f"{results['two_rank_efficiency_nomaps']:.2f} without")
    with open(os.path.join(a.out, "rf.md"), "w") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
