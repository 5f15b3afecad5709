#!/usr/bin/python3
"""Peer equivalence of the `cluster` stage, run by ctest as cluster_peer.

Runs simulate -> preprocess -> cluster at 1 and 3 ranks, then fits sklearn KMeans(algorithm="lloyd",
n_init=1) on the same standardised points from popcode's k-means++ starting points, and checks:
  - inertia within 1% of sklearn's (it is expected to agree to rounding), labels equal up to renaming
    (adjusted Rand index 1);
  - the repeat agreement and the ARI against the image classes equal their NumPy/sklearn definitions;
  - 1 and 3 ranks give the same labels.
Usage: test_cluster_peer.py POPCODE MPIEXEC. Exit 77 (skip) without numpy, sklearn or h5py.
"""
import os
import sys
import tempfile

try:
    import h5py
    import numpy as np
    from sklearn.cluster import KMeans
    from sklearn.metrics import adjusted_rand_score
except ImportError as e:
    print(f"SKIP: {e} (install python3-numpy python3-sklearn python3-h5py)")
    sys.exit(77)
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from popcode_run import run_job  # noqa: E402

POPCODE, MPIEXEC = sys.argv[1], sys.argv[2]
failures = []


def check(ok, what):
    if not ok:
        failures.append(what)
        print("FAIL:", what)


def run(tmp, ranks):
    job = os.path.join(tmp, f"c{ranks}.toml")
    with open(job, "w") as f:
        f.write(f"""[job]
name = "c{ranks}"
stages = ["simulate", "preprocess", "cluster"]
recording = "{tmp}/rec.h5"
results = "{tmp}/c{ranks}.h5"
[simulate]
neurons = 500
images = 600
repeats = 2
spont_timepoints = 300
seed = 3
[preprocess]
save_responses = true
spont_pcs = 8
[cluster]
k = 8
seed = 5
""")
    run_job(POPCODE, MPIEXEC, ranks, job, "cluster")
    return os.path.join(tmp, f"c{ranks}.h5"), os.path.join(tmp, "rec.h5")


with tempfile.TemporaryDirectory() as tmp:
    res1, rec = run(tmp, 1)
    res3, _ = run(tmp, 3)
    with h5py.File(res1, "r") as f:
        resp = f["preprocess/repeat_responses"][()]
        c = f["cluster"]
        labels, inertia = c["labels"][()], float(c["inertia"][()])
        init = c["init_points"][()]
        agreement, ari_classes = float(c["repeat_agreement"][()]), float(c["ari_classes"][()])
        image_ids = f["preprocess/image_ids"][()]
    with h5py.File(res3, "r") as f:
        check(np.array_equal(f["cluster/labels"][()], labels), "1 and 3 ranks give different labels")
    with h5py.File(rec, "r") as f:
        classes = f["classes/label"][()] if "classes" in f else None
    X = np.concatenate([resp[0], resp[1]], axis=0)  # points: repeat 1 of every image, then repeat 2
    X = (X - X.mean(axis=0)) / X.std(axis=0)
    km = KMeans(n_clusters=8, init=X[init], n_init=1, algorithm="lloyd", max_iter=300, tol=1e-4).fit(X)
    rel = abs(inertia - km.inertia_) / km.inertia_
    print(f"inertia popcode {inertia:.6f}, sklearn {km.inertia_:.6f} (relative difference {rel:.2e}); "
          f"{km.n_iter_} sklearn iterations")
    check(rel < 0.01, f"inertia differs from sklearn's by {rel:.3%}")
    check(adjusted_rand_score(km.labels_, labels) == 1.0, "labels differ from sklearn's beyond renaming")
    s = len(image_ids)
    check(abs(agreement - np.mean(labels[:s] == labels[s:])) < 1e-15, "repeat agreement")
    if classes is not None:
        truth = np.concatenate([classes[image_ids], classes[image_ids]])
        check(abs(ari_classes - adjusted_rand_score(truth, labels)) < 1e-12, "ARI against classes")
        print(f"repeat agreement {agreement:.3f}, ARI vs classes {ari_classes:.4f} (sklearn {adjusted_rand_score(truth, labels):.4f})")
    else:
        print("recording has no classes: ARI not compared")

if failures:
    print(f"{len(failures)} failure(s)")
    sys.exit(1)
print("PASS: k-means equals sklearn from the same start, at 1 and 3 ranks")
