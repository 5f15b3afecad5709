#!/usr/bin/env python3
"""Training-throughput benchmark of the category decoders (issue 5): popcode's decode-category stage (MLP
10,000 -> 512 -> 128 -> 16 with batchnorm and dropout 0.5, Adam, class-weighted cross-entropy, global batch
128) on a simulated recording of 10,000 neurons x 2,800 images x 2 repeats (2 folds: 2,800 training samples
each), at 1 and 2 ranks, against the same model, batch, loss and optimizer in PyTorch from Python (Debian
python3-torch) with 1 and 2 intra-op threads on random data of the same shape. Throughput is training samples
per second of the training loop alone (no validation, no data loading). The floor: 6 flops per parameter per
sample (forward, and backward for inputs and weights) at the float32 GEMM rate measured in this run, per core.
Medians and ranges of REPEATS runs.

The allocator: popcode's process runs with glibc malloc's mmap disabled (mallopt(M_MMAP_MAX, 0), called at load
time by libsuperlu_dist, a PETSc dependency), so large tensors are reused from the heap; a plain process
maps and unmaps each large activation, and on this VM the page faults cost PyTorch up to 3.5x on the CNN.
The peer therefore runs twice: as Python starts it, and with GLIBC_TUNABLES=glibc.malloc.mmap_max=0 (the
same allocator setting). The ratio against the second is the like-for-like one.

With --model cnn2d: popcode's decode-spatial stage instead, the 2D CNN on the 63 x 63 x 11 grid (channels
32, 64, 64; dense head 128; batchnorm, dropout 0.5), against the same network in PyTorch; the floor counts
the convolutions' and dense layers' multiply-adds (3 x 2 flops each: forward, and backward for inputs and
weights) at the sgemm rate.

Usage: /usr/bin/python3 bench/decode/run.py [--model mlp|cnn2d] [--build build] [--repeats 3] [--epochs 3] [--out bench/out]
Writes OUT/decode.json and OUT/decode.md (OUT/decode_cnn2d.* for the CNN).
"""
import argparse
import json
import os
import subprocess
import sys
import time

import h5py

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(REPO, "bench", "cvpca"))
from run import env, popcode, summary  # noqa: E402

NEURONS, IMAGES, CLASSES, HIDDEN, BATCH = 10000, 2800, 16, (512, 128), 128
GRID, CHANNELS, HEAD = (63, 63, 11), (32, 64, 64), 128  # columns, rows, planes

PEER = r"""
import json, sys, time
import torch
threads, epochs, n, d, k, batch = (int(v) for v in sys.argv[1:7])
hidden = [int(v) for v in sys.argv[7].split(",")]
grid = [int(v) for v in sys.argv[8].split(",")] if len(sys.argv) > 8 else None  # planes, rows, columns, c1, c2, c3
torch.set_num_threads(threads)
torch.manual_seed(0)
x = torch.randn(n, d)
y = torch.randint(0, k, (n,))
nn = torch.nn
if grid:
    p, r, c, c1, c2, c3 = grid
    layers = [nn.Unflatten(1, (p, r, c)),
              nn.Conv2d(p, c1, 5, padding=2), nn.BatchNorm2d(c1), nn.ReLU(), nn.MaxPool2d(2),
              nn.Conv2d(c1, c2, 3, padding=1), nn.BatchNorm2d(c2), nn.ReLU(), nn.MaxPool2d(2),
              nn.Conv2d(c2, c3, 3, padding=1), nn.BatchNorm2d(c3), nn.ReLU(), nn.AdaptiveAvgPool2d(4), nn.Flatten()]
    width = c3 * 16
    for h in hidden:
        layers += [nn.Dropout(0.5), nn.Linear(width, h), nn.ReLU()]
        width = h
    layers.append(nn.Dropout(0.5))
else:
    layers, width = [], d
    for h in hidden:
        layers += [nn.Linear(width, h), nn.BatchNorm1d(h), nn.ReLU(), nn.Dropout(0.5)]
        width = h
model = nn.Sequential(*layers, nn.Linear(width, k))
counts = torch.bincount(y, minlength=k).double()
loss_fn = torch.nn.CrossEntropyLoss(weight=(n / (k * counts)).float())
opt = torch.optim.Adam(model.parameters(), lr=1e-3, weight_decay=1e-4)
model.train()
t = time.perf_counter()
for epoch in range(epochs):
    perm = torch.randperm(n)
    for s in range(0, n, batch):
        idx = perm[s:s + batch]
        opt.zero_grad()
        loss = loss_fn(model(x[idx]), y[idx])
        loss.backward()
        opt.step()
seconds = time.perf_counter() - t
params = sum(p.numel() for p in model.parameters())
print(json.dumps({"seconds": seconds, "samples_per_second": epochs * n / seconds, "parameters": params}))
"""

SGEMM = r"""
import sys, time, numpy as np
n = 3000
a = np.random.default_rng(0).standard_normal((n, n)).astype(np.float32)
a @ a
best = 1e9
for _ in range(5):
    t = time.perf_counter(); a @ a; best = min(best, time.perf_counter() - t)
print(2 * n ** 3 / best / 1e9)
"""


def fmt0(s):
    return f"{s['median']:.0f} ({s['min']:.0f}-{s['max']:.0f})"


def cnn_multiply_adds():
    """Multiply-adds of one forward pass of the 2D grid CNN (solvers/nets/cnn.hpp)."""
    cols, rows, planes = GRID
    c1, c2, c3 = CHANNELS
    macs = rows * cols * c1 * planes * 25
    rows, cols = rows // 2, cols // 2
    macs += rows * cols * c2 * c1 * 9
    rows, cols = rows // 2, cols // 2
    macs += rows * cols * c3 * c2 * 9
    return macs + c3 * 16 * HEAD + HEAD * CLASSES


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", choices=("mlp", "cnn2d"), default="mlp")
    ap.add_argument("--build", default=os.path.join(REPO, "build"))
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--out", default=os.path.join(REPO, "bench", "out"))
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    binary = os.path.join(a.build, "popcode")
    recording = os.path.join(a.out, "decode_recording.h5")
    popcode(binary, 2, "simulate", "--out", recording, "--neurons", str(NEURONS), "--images", str(IMAGES), "--seed", "7")
    cnn = a.model == "cnn2d"
    hidden = str(HEAD) if cnn else ",".join(str(h) for h in HIDDEN)
    stage, group = ("decode-spatial", "decode_spatial") if cnn else ("decode-category", "decode_category")
    extra = ["--grid", ",".join(map(str, GRID)), "--channels", ",".join(map(str, CHANNELS))] if cnn else []
    peer_args = [",".join(map(str, (GRID[2], GRID[1], GRID[0]) + CHANNELS))] if cnn else []
    inputs = GRID[0] * GRID[1] * GRID[2] if cnn else NEURONS
    tag = "decode_cnn2d" if cnn else "decode"
    results = {"date": time.strftime("%Y-%m-%d"), "model": a.model, "neurons": NEURONS, "images": IMAGES, "hidden": hidden,
               "batch": BATCH, "epochs": a.epochs}
    rates, runs, peer = [], {}, {}
    params = None
    for name, ranks in [("popcode_1rank", 1), ("popcode_2ranks", 2)]:
        runs[name] = []
        for r in range(a.repeats):
            rates.append(float(subprocess.run([sys.executable, "-c", SGEMM], check=True, env=env(1), capture_output=True,
                                              text=True).stdout))
            out = os.path.join(a.out, f"decode_{name}_{r}.h5")
            popcode(binary, ranks, stage, "--in", recording, "--out", out, "--force", "--hidden", hidden,
                    "--folds", "2", "--epochs", str(a.epochs), "--patience", "0", "--validation-fraction", "0",
                    "--batch-size", str(BATCH), "--checkpoints", "false", *extra)
            with h5py.File(out, "r") as f:
                g = f[group]
                st = f[f"provenance/stages/{stage}"]
                runs[name].append({"samples_per_second": float(g.attrs["samples_per_second"]),
                                   "train_seconds": float(g.attrs["train_seconds"]),
                                   "peak_rss_mib": float(st["per_rank"][:, 4].max()) / 2**20})
                params = int(g.attrs["parameters"])
            print(f"{name} run {r}: {runs[name][-1]['samples_per_second']:.0f} samples/s", flush=True)
    for threads in (1, 2):
        for heap in (False, True):
            key = (threads, heap)
            peer[key] = []
            e = env(threads)
            if heap:
                e["GLIBC_TUNABLES"] = "glibc.malloc.mmap_max=0"
            for r in range(a.repeats):
                out = subprocess.run([sys.executable, "-c", PEER, str(threads), str(a.epochs), str(IMAGES), str(inputs),
                                      str(CLASSES), str(BATCH), hidden, *peer_args], check=True, env=e,
                                     capture_output=True, text=True)
                peer[key].append(json.loads(out.stdout))
                print(f"PyTorch {threads} thread(s){' mmap_max=0' if heap else ''} run {r}: "
                      f"{peer[key][-1]['samples_per_second']:.0f} samples/s", flush=True)
    rate = sorted(rates)[len(rates) // 2]
    rows = []
    for name, cores in [("popcode_1rank", 1), ("popcode_2ranks", 2)]:
        sm = summary([x["samples_per_second"] for x in runs[name]])
        pm = summary([x["samples_per_second"] for x in peer[(cores, False)]])
        ph = summary([x["samples_per_second"] for x in peer[(cores, True)]])
        flops = 6 * cnn_multiply_adds() if cnn else 6 * params
        floor = rate * 1e9 * cores / flops
        results[name] = {"samples_per_second": sm, "peer_samples_per_second": pm, "peer_heap_samples_per_second": ph,
                         "floor_samples_per_second": floor, "peak_rss_mib": max(x["peak_rss_mib"] for x in runs[name])}
        rows.append((name, cores, fmt0(sm), f"{floor:.0f}", f"{sm['median'] / floor:.2f}", fmt0(pm),
                     f"{sm['median'] / pm['median']:.2f}", fmt0(ph), f"{sm['median'] / ph['median']:.2f}",
                     f"{results[name]['peak_rss_mib']:.0f}"))
    results["parameters"] = params
    results["sgemm_gflops_per_core"] = summary(rates)
    results["two_rank_efficiency"] = (results["popcode_2ranks"]["samples_per_second"]["median"] /
                                      (2 * results["popcode_1rank"]["samples_per_second"]["median"]))
    with open(os.path.join(a.out, f"{tag}.json"), "w") as f:
        json.dump(results, f, indent=1, default=float)
    lines = ["| run | cores | popcode samples/s, median (range) | floor samples/s | popcode / floor | PyTorch samples/s, "
             "median (range) | popcode / PyTorch | PyTorch, mmap_max=0 | popcode / PyTorch (mmap_max=0) | peak MiB per rank |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    lines += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    lines.append("")
    lines.append(f"{params:,} parameters; float32 GEMM rate per core (median of {len(rates)}): {rate:.1f} GFLOP/s; "
                 f"2-rank efficiency {results['two_rank_efficiency']:.2f}")
    with open(os.path.join(a.out, f"{tag}.md"), "w") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
