#!/usr/bin/env python3
"""Intrinsic-dimension benchmark (issue 3): popcode's dimension stage (exact kNN graph, all-sources geodesic
histogram, Granata-Carnevale fit; k = 9, cosine) on 5,600 stimulus vectors (2,800 images x 2 repeats) of
10,000 neurons, at 1 and 2 ranks, against
  (a) the Python peer bench/dimension/idfit_peer.py (sklearn kneighbors_graph + scipy shortest_path + the
      ID_fit.py procedure) on the same preprocessed points, with 1 BLAS thread (as 1 rank) and 2 (as 2 ranks);
  (b) the floor of the kNN part: the upper triangle of the S x S Gram matrix over N neurons (S^2 N flops,
      what popcode's block loop and numpy's syrk compute) at the sgemm rate measured in this run, per core,
      since popcode's default pass forms its products in single precision (the dgemm rate, the floor of
      --products float64 and of the peer's kNN, is measured and reported beside it). Dijkstra has no flop
      floor; its time is inside popcode's column.
Each configuration runs REPEATS times, popcode and the peer interleaved; medians and ranges. Memory per rank: the stage's measured peak.

Usage: /usr/bin/python3 bench/dimension/run.py [--build build] [--repeats 3] [--out bench/out]
Writes OUT/dimension.json and OUT/dimension.md.
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


def dimension_run(binary, ranks, recording, out):
    popcode(binary, ranks, "dimension", "--in", recording, "--out", out, "--force", "--points", "both", "--metric", "cosine",
            "--k", "9")
    with h5py.File(out, "r") as f:
        st = f["provenance/stages/dimension"]
        return {"seconds": float(st.attrs["wall_s"]), "peak_rss_mib": float(st["per_rank"][:, 4].max()) / 2**20,
                "d_fit": float(f["dimension/d_fit"][0]), "d_min": float(f["dimension/d_min"][0]),
                "pairs": int(f["dimension/k9/histogram/pairs"][()]), "points": int(f["dimension"].attrs["point_count"]),
                "neurons": int(f["dimension"].attrs["neurons"])}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default=os.path.join(REPO, "build"))
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--out", default=os.path.join(REPO, "bench", "out"))
    ap.add_argument("--neurons", type=int, default=10000)
    ap.add_argument("--images", type=int, default=2800)
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    binary = os.path.join(a.build, "popcode")
    recording = os.path.join(a.out, "dim_recording.h5")
    prepared = os.path.join(a.out, "dim_prepared.h5")
    print(f"input: {a.neurons} neurons x {a.images} images x 2 repeats", flush=True)
    popcode(binary, 2, "simulate", "--out", recording, "--neurons", str(a.neurons), "--images", str(a.images), "--seed", "7")
    popcode(binary, 2, "preprocess", "--in", recording, "--out", prepared, "--force", "--save-responses", "true")

    results = {"neurons": a.neurons, "points": 2 * a.images, "k": 9, "metric": "cosine", "date": time.strftime("%Y-%m-%d"),
               "cpu": subprocess.run("lscpu | sed -n 's/^Model name: *//p'", shell=True, capture_output=True,
                                     text=True).stdout.strip(), "nproc": os.cpu_count()}
    rates, srates = [], []
    runs = {"popcode_1rank": [], "popcode_2ranks": []}
    peer = {1: [], 2: []}
    # Interleaved, so that a slow stretch of this shared machine falls on both sides of each ratio: every
    # repeat runs popcode at 1 rank, the peer with 1 thread, popcode at 2 ranks, the peer with 2 threads.
    for r in range(a.repeats):
        for name, ranks in [("popcode_1rank", 1), ("popcode_2ranks", 2)]:
            rates.append(dgemm_gflops())
            srates.append(dgemm_gflops(dtype="float32"))
            runs[name].append(dimension_run(binary, ranks, recording, os.path.join(a.out, f"dim_{name}_{r}.h5")))
            print(f"{name} run {r}: {runs[name][-1]['seconds']:.2f} s, D_fit {runs[name][-1]['d_fit']:.3f}", flush=True)
            threads = ranks
            out = subprocess.run([sys.executable, os.path.join(HERE, "idfit_peer.py"), prepared, "9", "cosine"], check=True,
                                 env=env(threads), capture_output=True, text=True)
            peer[threads].append(json.loads(out.stdout))
            p = peer[threads][-1]
            print(f"peer {threads} thread(s) run {r}: {p['seconds']:.1f} s (kNN {p['knn_s']:.1f}, shortest paths "
                  f"{p['shortest_path_s']:.1f}, histogram {p['histogram_s']:.1f}), D_fit {p['d_fit']:.3f}", flush=True)
    rate, srate = statistics.median(rates), statistics.median(srates)
    results["dgemm_gflops_per_core"] = summary(rates)
    results["sgemm_gflops_per_core"] = summary(srates)
    s_points, n = results["points"], a.neurons
    gram_flops = 1.0 * s_points * s_points * n  # half of the 2 S^2 N flops of the full Gram
    rows = []
    for name, cores in [("popcode_1rank", 1), ("popcode_2ranks", 2)]:
        s = summary([x["seconds"] for x in runs[name]])
        p = summary([x["seconds"] for x in peer[cores]])
        floor = gram_flops / (srate * 1e9 * cores)
        results[name] = {"seconds": s, "kNN_floor_seconds": floor, "peak_rss_mib": max(x["peak_rss_mib"] for x in runs[name]),
                         "d_fit": runs[name][0]["d_fit"], "d_min": runs[name][0]["d_min"], "pairs": runs[name][0]["pairs"],
                         "peer_seconds": p, "speedup_vs_peer": p["median"] / s["median"], "ratio_to_floor": s["median"] / floor,
                         "peer_phases": peer[cores]}
        rows.append((name, cores, fmt(s), f"{floor:.2f}", f"{s['median'] / floor:.1f}", fmt(p),
                     f"{p['median'] / s['median']:.1f}", f"{results[name]['peak_rss_mib']:.0f}",
                     f"{runs[name][0]['d_fit']:.3f} / {peer[cores][0]['d_fit']:.3f}"))
    results["two_rank_efficiency"] = results["popcode_1rank"]["seconds"]["median"] / (2 * results["popcode_2ranks"]["seconds"]["median"])
    with open(os.path.join(a.out, "dimension.json"), "w") as f:
        json.dump(results, f, indent=1, default=float)
    lines = ["| run | cores | popcode s, median (range) | kNN floor s (sgemm) | popcode / floor | Python peer s, median (range) | "
             "speed-up vs peer | peak MiB per rank | D_fit popcode / peer |",
             "|---|---|---|---|---|---|---|---|---|"]
    lines += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    lines.append("")
    lines.append(f"sgemm rate per core (median of {len(srates)}): {srate:.1f} GFLOP/s (range {min(srates):.1f}-{max(srates):.1f}); "
                 f"dgemm {rate:.1f} (range {min(rates):.1f}-{max(rates):.1f}); "
                 f"2-rank efficiency {results['two_rank_efficiency']:.2f}; {s_points} points x {n} neurons, "
                 f"{results['popcode_1rank']['pairs']} pairs")
    with open(os.path.join(a.out, "dimension.md"), "w") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
