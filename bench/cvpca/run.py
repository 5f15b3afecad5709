#!/usr/bin/env python3
"""cvPCA benchmark (issue 2): popcode's spectrum stage on 10,000 neurons x 2,800 images x 2 repeats with
10 shuffles, at 1 and 2 ranks, against
  (a) MouseLand's Python cvPCA (mouseland_peer.py, sklearn/numpy from Debian) on the same preprocessed input
      with the same repeat swaps, with 1 BLAS thread (same cores as 1 rank) and 2 threads (as 2 ranks);
  (b) the floor: popcode's operation count (Gram products + eigensolves, /spectrum attribute `flops`) at
      the dgemm rate measured in this run, per core.
Each configuration runs REPEATS times; the table gives the median and the range.

Usage: /usr/bin/python3 bench/cvpca/run.py [--build build] [--repeats 3] [--out bench/out]
Writes OUT/cvpca.json and OUT/cvpca.md (the table in bench/README.md comes from the latter).
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time

import h5py
import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))


def env(threads):
    e = dict(os.environ, OPENBLAS_NUM_THREADS=str(threads), OMP_NUM_THREADS=str(threads),
             POPCODE_BLAS_THREADS=str(threads))
    if os.geteuid() == 0:
        e.update(OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1")
    return e


def popcode(binary, ranks, *args):
    cmd = ["mpirun", "-n", str(ranks), "--oversubscribe", binary, "-q", *args]
    subprocess.run(cmd, check=True, env=env(1))


def dgemm_gflops(n=3000, repeats=5, dtype="float64"):
    """Single-thread dgemm (or, with dtype="float32", sgemm) rate through numpy (the same OpenBLAS libblas.so.3
    popcode links)."""
    code = ("import numpy as np,time\n"
            f"a=np.random.rand({n},{n}).astype('{dtype}');b=np.random.rand({n},{n}).astype('{dtype}');best=0\n"
            f"for _ in range({repeats}):\n t=time.perf_counter();a@b;best=max(best,2*{n}**3/(time.perf_counter()-t)/1e9)\n"
            "print(best)")
    out = subprocess.run([sys.executable, "-c", code], check=True, env=env(1), capture_output=True, text=True)
    return float(out.stdout)


def spectrum_run(binary, ranks, recording, out, components):
    popcode(binary, ranks, "spectrum", "--in", recording, "--out", out, "--force", "--nshuff", "10", "--seed", "0",
            "--components", str(components))
    with h5py.File(out, "r") as f:
        st = f["provenance/stages/spectrum"]
        return {"seconds": float(st.attrs["wall_s"]),
                "peak_rss_mib": float(st["per_rank"][:, 4].max()) / 2**20,
                "flops": float(f["spectrum"].attrs["flops"]),
                "alpha": float(f["spectrum/alpha"][()]),
                "signal": f["spectrum/signal_variance"][...]}


def summary(values):
    return {"median": statistics.median(values), "min": min(values), "max": max(values), "runs": values}


def fmt(s):
    return f"{s['median']:.1f} ({s['min']:.1f}-{s['max']:.1f})"


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
    recording = os.path.join(a.out, "input_recording.h5")
    prepared = os.path.join(a.out, "prepared.h5")
    print(f"input: {a.neurons} neurons x {a.images} images x 2 repeats", flush=True)
    popcode(binary, 2, "simulate", "--out", recording, "--neurons", str(a.neurons), "--images", str(a.images), "--seed", "7")
    # One run that stores the preprocessed responses and the swap masks the peer will use.
    popcode(binary, 2, "spectrum", "--in", recording, "--out", prepared, "--force", "--nshuff", "10", "--seed", "0",
            "--set", "preprocess.save_responses=true")

    results = {"neurons": a.neurons, "images": a.images, "passes": 10, "date": time.strftime("%Y-%m-%d"),
               "cpu": subprocess.run("lscpu | sed -n 's/^Model name: *//p'", shell=True, capture_output=True,
                                     text=True).stdout.strip(), "nproc": os.cpu_count()}
    rates = []
    runs = {}
    for name, ranks, comps in [("popcode_1rank", 1, 0), ("popcode_2ranks", 2, 0), ("popcode_1rank_1024", 1, 1024),
                               ("popcode_2ranks_1024", 2, 1024)]:
        runs[name] = []
        for r in range(a.repeats):
            rates.append(dgemm_gflops())
            runs[name].append(spectrum_run(binary, ranks, recording, os.path.join(a.out, f"{name}_{r}.h5"), comps))
            print(f"{name} run {r}: {runs[name][-1]['seconds']:.1f} s, alpha {runs[name][-1]['alpha']:.4f}", flush=True)
    peer = {}
    for threads in (1, 2):
        peer[threads] = []
        for r in range(a.repeats):
            out = subprocess.run([sys.executable, os.path.join(HERE, "mouseland_peer.py"), prepared,
                                  os.path.join(a.out, "peer_spectrum.npy")], check=True, env=env(threads),
                                 capture_output=True, text=True)
            peer[threads].append(json.loads(out.stdout)["seconds"])
            print(f"peer {threads} thread(s) run {r}: {peer[threads][-1]:.1f} s", flush=True)
    rate = statistics.median(rates)
    results["dgemm_gflops_per_core"] = summary(rates)
    peer_ss = np.load(os.path.join(a.out, "peer_spectrum.npy"))
    ours = runs["popcode_1rank"][0]["signal"]
    ours_raw = ours / ours[:1024].sum()
    peer_norm = peer_ss / peer_ss.sum()
    results["spectrum_agreement_top500"] = float(np.max(np.abs(ours_raw[:500] - peer_norm[:500]) / np.abs(peer_norm[:500])))

    rows = []
    for name, cores, peer_threads in [("popcode_1rank", 1, 1), ("popcode_2ranks", 2, 2), ("popcode_1rank_1024", 1, 1),
                                      ("popcode_2ranks_1024", 2, 2)]:
        secs = [x["seconds"] for x in runs[name]]
        s = summary(secs)
        floor = runs[name][0]["flops"] / (rate * 1e9 * cores)
        p = summary(peer[peer_threads])
        results[name] = {"seconds": s, "floor_seconds": floor, "peak_rss_mib": max(x["peak_rss_mib"] for x in runs[name]),
                         "alpha": runs[name][0]["alpha"], "flops": runs[name][0]["flops"],
                         "speedup_vs_peer": p["median"] / s["median"], "ratio_to_floor": s["median"] / floor}
        rows.append((name, cores, fmt(s), f"{floor:.1f}", f"{s['median'] / floor:.2f}", fmt(p), f"{p['median'] / s['median']:.1f}",
                     f"{results[name]['peak_rss_mib']:.0f}"))
    results["peer_seconds"] = {str(k): summary(v) for k, v in peer.items()}
    for full, half in [("popcode_1rank", "popcode_2ranks"), ("popcode_1rank_1024", "popcode_2ranks_1024")]:
        results[half]["two_rank_efficiency"] = results[full]["seconds"]["median"] / (2 * results[half]["seconds"]["median"])
    with open(os.path.join(a.out, "cvpca.json"), "w") as f:
        json.dump(results, f, indent=1, default=float)
    lines = ["| run | cores | popcode s, median (range) | floor s | popcode / floor | Python peer s, median (range) | speed-up vs peer | peak MiB per rank |",
             "|---|---|---|---|---|---|---|---|"]
    lines += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    lines.append("")
    lines.append(f"dgemm rate per core (median of {len(rates)}): {rate:.1f} GFLOP/s (range {min(rates):.1f}-{max(rates):.1f}); "
                 f"2-rank efficiency: all components {results['popcode_2ranks']['two_rank_efficiency']:.2f}, "
                 f"1024 components {results['popcode_2ranks_1024']['two_rank_efficiency']:.2f}; "
                 f"popcode vs peer normalised spectra over PCs 1-500: max relative difference {results['spectrum_agreement_top500']:.3f}")
    with open(os.path.join(a.out, "cvpca.md"), "w") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
