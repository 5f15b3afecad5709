#!/usr/bin/python3
"""Peer equivalence of spectral co-clustering (cluster stage, cocluster_k), run by ctest as cocluster_peer.

Writes a recording with a planted checkerboard (images and neurons in 3 interleaved groups, a neuron
responding strongly to the images of its own group, plus noise, two repeats), runs preprocess -> cluster with
cocluster_k = 3 at 1, 2 and 3 ranks (SLEPc singular vectors, and the Gram method at 2 ranks), and checks:
  - image and neuron labels equal sklearn SpectralCoclustering's on the same matrix up to renaming (ARI 1);
  - both equal the planted groups (ARI 1);
  - the singular values equal NumPy's SVD of Dr^-1/2 X Dc^-1/2 to 1e-8.
Usage: test_cocluster_peer.py POPCODE MPIEXEC. Exit 77 (skip) without numpy, sklearn or h5py.
"""
import os
import sys
import tempfile

try:
    import h5py
    import numpy as np
    from sklearn.cluster import SpectralCoclustering
    from sklearn.metrics import adjusted_rand_score
except ImportError as e:
    print(f"SKIP: {e} (install python3-numpy python3-sklearn python3-h5py)")
    sys.exit(77)
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from popcode_run import run_job  # noqa: E402

POPCODE, MPIEXEC = sys.argv[1], sys.argv[2]
S, N, K = 90, 60, 3
failures = []


def check(ok, what):
    if not ok:
        failures.append(what)
        print("FAIL:", what)


def write_recording(path):
    rng = np.random.default_rng(5)
    img_group = rng.permutation(np.arange(S) % K)
    neu_group = rng.permutation(np.arange(N) % K)
    signal = 1.0 + 4.0 * (img_group[:, None] == neu_group[None, :])
    resp = np.concatenate([signal + 0.5 * rng.standard_normal((S, N)) for _ in range(2)]).astype(np.float32)
    with h5py.File(path, "w") as f:
        f.attrs.update(format="popcode-recording", format_version=1, n_images=S, source="checkerboard", units="a.u.")
        f["responses"] = resp
        f["stimulus_id"] = np.tile(np.arange(S, dtype=np.int32), 2)
    return img_group, neu_group


def run(tmp, ranks, svd):
    name = f"co{ranks}_{svd}"
    job = os.path.join(tmp, f"{name}.toml")
    with open(job, "w") as f:
        f.write(f"""[job]
name = "{name}"
stages = ["preprocess", "cluster"]
recording = "{tmp}/rec.h5"
results = "{tmp}/{name}.h5"
[preprocess]
save_responses = true
spont_pcs = 0
[cluster]
k = 3
cocluster_k = {K}
cocluster_svd = "{svd}"
""")
    run_job(POPCODE, MPIEXEC, ranks, job, name)
    with h5py.File(os.path.join(tmp, f"{name}.h5"), "r") as f:
        return {"images": f["cluster/cocluster/image_labels"][()], "neurons": f["cluster/cocluster/neuron_labels"][()],
                "sv": f["cluster/cocluster/singular_values"][()], "resp": f["preprocess/repeat_responses"][()],
                "ids": f["preprocess/image_ids"][()]}


with tempfile.TemporaryDirectory() as tmp:
    img_group, neu_group = write_recording(os.path.join(tmp, "rec.h5"))
    runs = {(r, "slepc"): run(tmp, r, "slepc") for r in (1, 2, 3)}
    runs[(2, "gram")] = run(tmp, 2, "gram")
    ref = runs[(1, "slepc")]
    x = 0.5 * (ref["resp"][0] + ref["resp"][1])
    x = x - x.min(0)
    peer = SpectralCoclustering(n_clusters=K, random_state=0).fit(x)
    an = x / np.sqrt(x.sum(1))[:, None] / np.sqrt(x.sum(0))[None, :]
    sv = np.linalg.svd(an, compute_uv=False)
    planted_images = img_group[ref["ids"]]
    for key, res in runs.items():
        what = f"{key[0]} rank(s), {key[1]}"
        check(adjusted_rand_score(peer.row_labels_, res["images"]) == 1.0, f"{what}: image labels differ from sklearn's")
        check(adjusted_rand_score(peer.column_labels_, res["neurons"]) == 1.0, f"{what}: neuron labels differ from sklearn's")
        check(adjusted_rand_score(planted_images, res["images"]) == 1.0, f"{what}: image labels miss the planted groups")
        check(adjusted_rand_score(neu_group, res["neurons"]) == 1.0, f"{what}: neuron labels miss the planted groups")
        err = np.max(np.abs(res["sv"] - sv[:len(res["sv"])]))
        check(err <= 1e-8, f"{what}: singular values differ from NumPy's by {err:.2e}")

if failures:
    sys.exit(f"{len(failures)} check(s) failed")
print("co-clustering peer equivalence: all checks passed")
