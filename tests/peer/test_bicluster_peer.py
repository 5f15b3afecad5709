#!/usr/bin/python3
"""Peer equivalence of spectral biclustering (cluster stage, bicluster_k), run by ctest as bicluster_peer.

Writes a recording with a planted checkerboard: images in 3 groups and neurons in 4 groups (interleaved), each
(image group, neuron group) block at its own random level, times a per-image and a per-neuron gain, plus noise,
two repeats. Runs preprocess -> cluster with bicluster_k = 3, bicluster_neuron_k = 4 and checks:
  - for each normalisation (bistochastic, scale, log) at 1 rank, and bistochastic at 2 and 3 ranks (SLEPc) and
    at 2 ranks with the Gram method: image and neuron labels equal sklearn SpectralBiclustering's on the same
    repeat-mean matrix up to renaming (ARI 1), and both equal the planted groups;
  - the singular values equal NumPy's SVD of the normalised matrix, written out here from the formulas, to 1e-8,
    and the normalised matrix itself equals sklearn's private normalisers;
  - the k-means on each neuron cluster's neurons: the neuron counts match the labels, and every subset labelling
    is a Lloyd fixed point on those neurons alone (each point nearest its own cluster's mean), which fails if
    any other set of neurons was used.
Usage: test_bicluster_peer.py POPCODE MPIEXEC. Exit 77 (skip) without numpy, sklearn or h5py.
"""
import os
import subprocess
import sys
import tempfile

try:
    import h5py
    import numpy as np
    from sklearn.cluster import KMeans, SpectralBiclustering
    from sklearn.cluster import _bicluster as skb
    from sklearn.metrics import adjusted_rand_score
except ImportError as e:
    print(f"SKIP: {e} (install python3-numpy python3-sklearn python3-h5py)")
    sys.exit(77)
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from popcode_run import run_job  # noqa: E402

POPCODE, MPIEXEC = sys.argv[1], sys.argv[2]
S, N, KI, KN = 120, 80, 3, 4
failures = []


def check(ok, what):
    if not ok:
        failures.append(what)
        print("FAIL:", what)


def write_recording(path):
    rng = np.random.default_rng(11)
    img_group = rng.permutation(np.arange(S) % KI)
    neu_group = rng.permutation(np.arange(N) % KN)
    levels = rng.permutation(np.linspace(1.0, 8.0, KI * KN)).reshape(KI, KN)
    gain_i = rng.uniform(0.8, 1.25, S)
    gain_n = rng.uniform(0.8, 1.25, N)
    signal = gain_i[:, None] * levels[img_group][:, neu_group] * gain_n[None, :]
    resp = np.concatenate([signal + 0.1 * rng.standard_normal((S, N)) for _ in range(2)]).astype(np.float32)
    with h5py.File(path, "w") as f:
        f.attrs.update(format="popcode-recording", format_version=1, n_images=S, source="checkerboard", units="a.u.")
        f["responses"] = resp
        f["stimulus_id"] = np.tile(np.arange(S, dtype=np.int32), 2)
    return img_group, neu_group


def run(tmp, ranks, method, svd, image_k=KI, expect_fail=False, recording="rec.h5"):
    name = f"bi{ranks}_{method}_{svd}_{image_k}_{recording[:-3]}"
    job = os.path.join(tmp, f"{name}.toml")
    with open(job, "w") as f:
        f.write(f"""[job]
name = "{name}"
stages = ["preprocess", "cluster"]
recording = "{tmp}/{recording}"
results = "{tmp}/{name}.h5"
[preprocess]
save_responses = true
spont_pcs = 0
[cluster]
k = 3
bicluster_k = {image_k}
bicluster_neuron_k = {KN}
bicluster_method = "{method}"
bicluster_svd = "{svd}"
""")
    if expect_fail:
        env = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1")
        return subprocess.run([MPIEXEC, "-n", str(ranks), "--oversubscribe", POPCODE, "run", job], env=env,
                              capture_output=True, text=True, timeout=300)
    run_job(POPCODE, MPIEXEC, ranks, job, name)
    with h5py.File(os.path.join(tmp, f"{name}.h5"), "r") as f:
        g = f["cluster/bicluster"]
        return {k: g[k][()] for k in g} | {"resp": f["preprocess/repeat_responses"][()], "ids": f["preprocess/image_ids"][()],
                                           "points": np.concatenate(list(f["preprocess/repeat_responses"][()]), 0)}


def normalised(x, method):
    """The three normalisations, written out from Kluger et al. / sklearn's definitions."""
    if method == "log":
        lx = np.log(x - x.min() + 1 if x.min() < 1 else x)
        return lx - lx.mean(1, keepdims=True) - lx.mean(0, keepdims=True) + lx.mean()
    a = x - x.min() if x.min() < 0 else x.copy()
    for _ in range(1 if method == "scale" else 1000):
        b = a / np.sqrt(a.sum(1))[:, None] / np.sqrt(a.sum(0))[None, :]
        change = np.linalg.norm(a - b)
        a = b
        if change < 1e-5:
            break
    return a


def best_piecewise(vectors, clusters, n_best=3):
    """Kluger's selection: the vectors (columns) best fitted by a k-means piecewise-constant vector."""
    dist = []
    for v in vectors.T:
        km = KMeans(clusters, n_init=10, random_state=0).fit(v[:, None])
        dist.append(np.linalg.norm(v - km.cluster_centers_[km.labels_, 0]))
    return sorted(np.argsort(dist)[:n_best])


def lloyd_fixed_point(points, labels):
    """Every point is nearest (or tied) to the mean of its own cluster."""
    cents = np.stack([points[labels == c].mean(0) for c in np.unique(labels)])
    d = ((points[:, None, :] - cents[None, :, :]) ** 2).sum(2)
    own = d[np.arange(len(labels)), np.searchsorted(np.unique(labels), labels)]
    return bool(np.all(own <= d.min(1) + 1e-9 * (1 + d.min(1))))


with tempfile.TemporaryDirectory() as tmp:
    img_group, neu_group = write_recording(os.path.join(tmp, "rec.h5"))
    runs = {(1, m, "slepc"): run(tmp, 1, m, "slepc") for m in ("bistochastic", "scale", "log")}
    for r in (2, 3):
        runs[(r, "bistochastic", "slepc")] = run(tmp, r, "bistochastic", "slepc")
    runs[(2, "bistochastic", "gram")] = run(tmp, 2, "bistochastic", "gram")
    ref = runs[(1, "bistochastic", "slepc")]
    # More image clusters than images: exit 3 with a message naming the sizes, at 2 ranks (no hang).
    bad = run(tmp, 2, "bistochastic", "slepc", image_k=S, expect_fail=True)
    check(bad.returncode == 3 and f"{S} x {KN} biclusters" in bad.stderr and f"{S} images x {N} neurons" in bad.stderr
          and "rec.h5" in bad.stderr, f"bicluster_k = {S}: exit {bad.returncode}, stderr tail {bad.stderr[-300:]!r}")
    # Every response equal: nothing to bicluster, exit 3 naming the recording (SLEPc is never asked).
    with h5py.File(os.path.join(tmp, "flat.h5"), "w") as f:
        f.attrs.update(format="popcode-recording", format_version=1, n_images=S, source="flat", units="a.u.")
        f["responses"] = np.zeros((2 * S, N), np.float32)
        f["stimulus_id"] = np.tile(np.arange(S, dtype=np.int32), 2)
    flat = run(tmp, 2, "bistochastic", "slepc", expect_fail=True, recording="flat.h5")
    check(flat.returncode == 3 and "flat.h5" in flat.stderr and "is zero" in flat.stderr,
          f"a flat recording: exit {flat.returncode}, stderr tail {flat.stderr[-300:]!r}")
    x = 0.5 * (ref["resp"][0] + ref["resp"][1])  # images x neurons, as sklearn takes it
    planted_images = img_group[ref["ids"]]
    sk_norm = {"bistochastic": skb._bistochastic_normalize(x), "scale": skb._scale_normalize(x)[0],
               "log": skb._log_normalize(x)}
    for key, res in runs.items():
        ranks, method, svd = key
        what = f"{ranks} rank(s), {method}, {svd}"
        a = normalised(x, method)
        err = np.max(np.abs(a - sk_norm[method]))
        check(err <= 1e-12, f"{what}: the written-out normalisation differs from sklearn's by {err:.2e}")
        u, sv, vt = np.linalg.svd(a)
        drop = 0 if method == "log" else 1
        want_i, want_n = best_piecewise(u[:, drop:6 + drop], KI), best_piecewise(vt[drop:6 + drop].T, KN)
        check(sorted(res["best_image_vectors"]) == want_i and sorted(res["best_neuron_vectors"]) == want_n,
              f"{what}: kept singular vectors {res['best_image_vectors']} / {res['best_neuron_vectors']}, "
              f"NumPy + KMeans keep {want_i} / {want_n}")
        err = np.max(np.abs(res["singular_values"] - sv[:len(res["singular_values"])]))
        check(len(res["singular_values"]) == (6 if method == "log" else 7) and err <= 1e-8,
              f"{what}: singular values differ from NumPy's by {err:.2e}")
        # sklearn's default randomized SVD: its "arpack" path keeps svds' ascending order and so drops the smallest
        # vector instead of the trivial first one (scikit-learn issue #12863, open; sklearn 1.2 here).
        peer = SpectralBiclustering(n_clusters=(KI, KN), method=method, random_state=0).fit(x)
        check(adjusted_rand_score(peer.row_labels_, res["image_labels"]) == 1.0, f"{what}: image labels differ from sklearn's")
        check(adjusted_rand_score(peer.column_labels_, res["neuron_labels"]) == 1.0,
              f"{what}: neuron labels differ from sklearn's")
        check(adjusted_rand_score(planted_images, res["image_labels"]) == 1.0, f"{what}: image labels miss the planted groups")
        check(adjusted_rand_score(neu_group, res["neuron_labels"]) == 1.0, f"{what}: neuron labels miss the planted groups")
        # k-means on each neuron cluster's neurons: the points are the standardised repeat responses.
        pts = res["points"]
        z = (pts - pts.mean(0)) / pts.std(0)
        counts = np.bincount(res["neuron_labels"], minlength=KN)
        check(np.array_equal(res["subset_neurons"], counts), f"{what}: subset neuron counts {res['subset_neurons']} != {counts}")
        for c in range(KN):
            check(lloyd_fixed_point(z[:, res["neuron_labels"] == c], res["subset_labels"][c]),
                  f"{what}: the k-means on neuron cluster {c} is not a fixed point on its own neurons")
        if ranks == 1 and method == "bistochastic":
            wrong = (res["neuron_labels"] + 1) % KN
            check(not all(lloyd_fixed_point(z[:, wrong == c], res["subset_labels"][c]) for c in range(KN)),
                  "the fixed-point check cannot tell the neuron sets apart (test too weak)")

if failures:
    sys.exit(f"{len(failures)} check(s) failed")
print("biclustering peer equivalence: all checks passed")
