#!/usr/bin/python3
"""Peer equivalence of the `dimension` stage, run by ctest as dimension_peer.

Runs simulate -> preprocess -> dimension on ~1,000 stimulus points at 1, 2 and 3 ranks and checks, for
each metric:
  - the results agree across rank counts (neighbour lists exactly, everything else to 1e-10);
  - kNN neighbour sets equal sklearn NearestNeighbors(algorithm="brute") on the same points, ties aside,
    and the distances agree to 1e-9;
  - each geodesic histogram equals np.histogram of scipy.sparse.csgraph.shortest_path on the same kNN graph,
    after ID_fit.py's connectivity filter and upper triangle: integer counts exactly, edges exactly;
  - the Granata-Carnevale fit, TwoNN, Levina-Bickel and the participation ratio equal direct NumPy versions
    of the formulas (ID_fit.py's steps with np.polyfit) to 1e-9 (the participation ratio: 1e-9 under
    products = float64, PR_TOL_FLOAT32 under the default float32 products);
  - products = float64 gives the same graph, histograms and fits as the default float32 products.
The same checks run on the `dimension-spont` stage, on a recording written here whose spontaneous activity lies
on a planted 2-sphere embedded in 270 of 300 neurons (30 flagged GAD+ and dropped), the points being its time
points z-scored per neuron as written out in NumPy; there TwoNN and Levina-Bickel must also find d = 2 within
10%, and a recording without /spontaneous must exit 3. Last, a 2-d Gaussian cloud whose fit the stage refuses: a NaN
D_fit with the reason in k<k>_status, and the histogram still written, equal to scipy's.
Usage: test_dimension_peer.py POPCODE MPIEXEC. Exit 77 (skip) without numpy, scipy, sklearn or h5py.
"""
import os
import subprocess
import sys
import tempfile

try:
    import h5py
    import numpy as np
    import scipy.sparse
    import scipy.sparse.csgraph
    from sklearn.neighbors import NearestNeighbors
except ImportError as e:
    print(f"SKIP: {e} (install python3-numpy python3-scipy python3-sklearn python3-h5py)")
    sys.exit(77)
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from idfit_numpy import numpy_gc_fit  # noqa: E402
from popcode_run import run_job  # noqa: E402

POPCODE, MPIEXEC = sys.argv[1], sys.argv[2]
failures = []


def check(ok, what):
    if not ok:
        failures.append(what)
        print("FAIL:", what)


def run_dimension(tmp, name, ranks, metric, products="float32"):
    job = os.path.join(tmp, f"{name}.toml")
    with open(job, "w") as f:
        f.write(f"""[job]
name = "{name}"
stages = ["simulate", "preprocess", "dimension"]
recording = "{tmp}/rec.h5"
results = "{tmp}/{name}.h5"
[simulate]
neurons = 400
images = 1000
repeats = 2
spont_timepoints = 300
seed = 7
[preprocess]
save_responses = true
spont_pcs = 8
[dimension]
metric = "{metric}"
products = "{products}"
k = "4,9"
mle_k = 12
tile = 300
store_mb = {0 if ranks == 2 else 1024}
""")
    run_job(POPCODE, MPIEXEC, ranks, job, metric)
    return os.path.join(tmp, f"{name}.h5")


def close(a, b, tol):
    a, b = np.asarray(a, float), np.asarray(b, float)
    return a.shape == b.shape and np.allclose(a, b, rtol=tol, atol=tol * max(1.0, np.abs(b).max(initial=0)))


# The participation ratio comes from the kNN pass's products: exact in double under products = float64; under
# float32 each product is within ~1.2e-4 |x||y| of the double one (knn.hpp), and the ratio's sums of squares
# average those errors out to far less. PR_TOL_FLOAT32 is that tolerance (measured errors are printed).
PR_TOL_FLOAT32 = 1e-6


def scipy_histogram(idx, dist, k):
    """The anchor's geodesic histogram on popcode's kNN lists (first k neighbours): the symmetric graph, scipy
    shortest paths, ID_fit.py's connectivity filter and upper triangle, np.histogram with 50 bins."""
    n = idx.shape[0]
    w = {}
    for i in range(n):
        for c in range(k):
            j = int(idx[i, c])
            key = (min(i, j), max(i, j))
            w[key] = min(w.get(key, np.inf), dist[i, c])
    rows = np.array([a for a, _ in w] + [b for _, b in w])
    cols = np.array([b for _, b in w] + [a for a, _ in w])
    vals = np.array(list(w.values()) * 2)
    G = scipy.sparse.csr_matrix((vals, (rows, cols)), shape=(n, n))
    C = scipy.sparse.csgraph.shortest_path(G, method="D", directed=False)
    C[~np.isfinite(C)] = 0
    for i in range(n):  # ID_fit.py's connectivity filter
        if np.count_nonzero(C[i]) <= n / 2.0:
            C[i] = 0
    dist_list = C[np.nonzero(np.triu(C, 1))]
    counts, edges = np.histogram(dist_list, 50)
    return dist_list, counts, edges


def check_against_peers(path, metric, group="dimension", X=None, pr_tol=PR_TOL_FLOAT32):
    with h5py.File(path, "r") as r:
        d = r[group]
        if X is None:
            resp = r["preprocess/repeat_responses"][()]  # [repeat, stimulus, neuron]
            X = 0.5 * (resp[0] + resp[1])                  # points = repeat mean, as the stage's default
        idx, dist = d["knn/index"][()], d["knn/distance"][()]
        ks = d["k"][()]
        out = {name: d[name][()] for name in ("two_nn/dimension", "two_nn/dimension_mle", "mle/dimension",
                                              "mle/k", "participation_ratio")}
        per_k = {}
        for k in ks:
            g = d[f"k{k}"]
            per_k[k] = {name: g[name][()] for name in ("histogram/counts", "histogram/edges", "histogram/mean",
                                                       "histogram/std", "d_fit", "d_min", "ratio", "r_max", "rmsd",
                                                       "fit/x", "fit/log_p", "r_nn_max")}
    n, K = idx.shape
    with h5py.File(path, "r") as r:
        print(f"{metric}: {r[group].attrs['products']} products, {r[group]['knn/rechecked_pairs'][()]} pairs re-ranked "
              f"in double for k = {K} on {n} points")
    # kNN against sklearn.
    nn = NearestNeighbors(n_neighbors=K, metric=metric, algorithm="brute").fit(X)
    sk_dist, sk_idx = nn.kneighbors()
    check(close(dist, sk_dist, 1e-9), f"{metric}: kNN distances differ from sklearn by {np.abs(dist - sk_dist).max()}")
    differing = 0
    for i in range(n):
        if set(idx[i]) != set(sk_idx[i]):
            # Allowed only for a tie at the k-th distance.
            if not abs(sk_dist[i, -1] - dist[i, -1]) <= 1e-12 * max(1.0, abs(dist[i, -1])) or \
                    len(set(idx[i]) ^ set(sk_idx[i])) > 2 * np.sum(np.isclose(dist[i], dist[i, -1], rtol=1e-12)):
                differing += 1
    check(differing == 0, f"{metric}: {differing} points have neighbour sets unlike sklearn's (beyond ties)")

    # Geodesic histograms against scipy shortest paths on the same graph.
    for k in ks:
        pk = per_k[k]
        dist_list, counts, edges = scipy_histogram(idx, dist, k)
        check(np.array_equal(counts, pk["histogram/counts"]),
              f"{metric} k={k}: histogram counts differ from scipy's: {np.abs(counts - pk['histogram/counts']).sum()} pairs")
        check(np.array_equal(edges, pk["histogram/edges"]), f"{metric} k={k}: histogram edges differ")
        check(close(pk["histogram/mean"], dist_list.mean(), 1e-11), f"{metric} k={k}: mean distance")
        check(close(pk["histogram/std"], dist_list.std(), 1e-9), f"{metric} k={k}: s.d. of distances")
        check(close(pk["r_nn_max"], dist[:, :k].max(), 0), f"{metric} k={k}: r_NN_max")
        ref = numpy_gc_fit(counts, edges, dist_list.mean(), dist_list.std(), dist[:, :k].max())
        for name in ("r_max", "ratio", "d_fit", "rmsd"):
            check(close(pk[name], ref[name], 1e-9), f"{metric} k={k}: {name} {pk[name]} vs NumPy {ref[name]}")
        check(int(pk["d_min"]) == ref["d_min"], f"{metric} k={k}: d_min {pk['d_min']} vs NumPy {ref['d_min']}")
        check(close(pk["fit/x"], ref["x"], 1e-12) and close(pk["fit/log_p"], ref["y"], 1e-9), f"{metric} k={k}: fit window")
        print(f"{metric} k={k}: {int(counts.sum())} pairs, histogram equal to scipy's; D_fit {pk['d_fit']:.4f} "
              f"(NumPy {ref['d_fit']:.4f}), D_min {pk['d_min']}")

    # TwoNN, Levina-Bickel and the participation ratio from the formulas.
    mu = dist[:, 1] / dist[:, 0]
    check(close(out["two_nn/dimension_mle"], (n - 1) / np.sum(np.log(mu)), 1e-9), f"{metric}: TwoNN MLE form")
    mus = np.sort(mu)
    keep = int(np.floor(0.9 * n))
    xx = np.log(mus[:keep])
    yy = -np.log(1 - np.arange(keep) / n)
    check(close(out["two_nn/dimension"], np.sum(xx * yy) / np.sum(xx * xx), 1e-9), f"{metric}: TwoNN fit")
    km = int(out["mle/k"])
    inv = np.mean(np.sum(np.log(dist[:, km - 1:km] / dist[:, :km - 1]), axis=1) / (km - 1))
    check(close(out["mle/dimension"], 1 / inv, 1e-9), f"{metric}: Levina-Bickel")
    P = X.astype(float)
    if metric == "correlation":
        P = P - P.mean(axis=1, keepdims=True)
    if metric in ("cosine", "correlation"):
        P = P / np.linalg.norm(P, axis=1, keepdims=True)
    lam = np.linalg.eigvalsh(np.cov(P.T, bias=True))
    pr_ref = lam.sum() ** 2 / np.sum(lam ** 2)
    pr_err = abs(out["participation_ratio"] - pr_ref) / pr_ref
    print(f"{metric}: participation ratio {out['participation_ratio']:.10g}, NumPy {pr_ref:.10g} (relative {pr_err:.1e})")
    check(pr_err <= pr_tol, f"{metric}: participation ratio off by {pr_err:.2e} relative (tolerance {pr_tol:g})")
    print(f"{metric}: TwoNN {out['two_nn/dimension']:.3f}, MLE {out['mle/dimension']:.3f}, "
          f"PR {out['participation_ratio']:.3f}: equal to the NumPy formulas")
    return out


def compare_runs(a, b, label, group="dimension"):
    with h5py.File(a, "r") as fa, h5py.File(b, "r") as fb:
        check(np.array_equal(fa[f"{group}/knn/index"][()], fb[f"{group}/knn/index"][()]), f"{label}: knn index")
        names = []
        fa[group].visititems(lambda n, o: names.append(n) if isinstance(o, h5py.Dataset) else None)
        for n in names:
            if n == "knn/rechecked_pairs":  # a diagnostic of the float32 pass, which rounds differently per run
                continue
            va, vb = fa[group][n][()], fb[group][n][()]
            tol = PR_TOL_FLOAT32 if n == "participation_ratio" else 1e-10  # sums over other runs of neurons
            check(close(va, vb, tol), f"{label}: {group}/{n} differs")


SPONT_N, SPONT_GAD, SPONT_T, SPONT_D = 300, 30, 800, 2


def write_spont_recording(path, with_spont=True):
    """Spontaneous activity on a planted 2-sphere (uniform), linearly embedded in the non-GAD neurons."""
    rng = np.random.default_rng(3)
    z = rng.standard_normal((SPONT_T, SPONT_D + 1))
    z /= np.linalg.norm(z, axis=1, keepdims=True)
    gad = np.zeros(SPONT_N, np.uint8)
    gad[rng.choice(SPONT_N, SPONT_GAD, replace=False)] = 1
    spont = rng.standard_normal((SPONT_T, SPONT_N))  # GAD+ neurons: unstructured noise (dropped)
    spont[:, gad == 0] = z @ rng.standard_normal((SPONT_D + 1, SPONT_N - SPONT_GAD)) + 5.0
    with h5py.File(path, "w") as f:
        f.attrs.update(format="popcode-recording", format_version=1, n_images=50, source="planted sphere", units="a.u.")
        f["responses"] = rng.standard_normal((100, SPONT_N)).astype(np.float32)
        f["stimulus_id"] = np.tile(np.arange(50, dtype=np.int32), 2)
        if with_spont:
            f["spontaneous"] = spont.astype(np.float32)
        f["neurons/gad_positive"] = gad


def spont_job(tmp, name, recording):
    job = os.path.join(tmp, f"{name}.toml")
    with open(job, "w") as f:
        f.write(f"""[job]
name = "{name}"
stages = ["preprocess", "dimension-spont"]
recording = "{recording}"
results = "{tmp}/{name}.h5"
[preprocess]
spont_pcs = 4
[dimension-spont]
k = "4,9"
mle_k = 12
tile = 300
""")
    return job


def check_spontaneous(tmp):
    rec = os.path.join(tmp, "spont_rec.h5")
    write_spont_recording(rec)
    paths = {}
    for ranks in (1, 2, 3):
        name = f"spont_{ranks}"
        run_job(POPCODE, MPIEXEC, ranks, spont_job(tmp, name, rec), name)
        paths[ranks] = os.path.join(tmp, f"{name}.h5")
    with h5py.File(rec, "r") as f:
        keep = f["neurons/gad_positive"][()] == 0
        sp = f["spontaneous"][()].astype(float)[:, keep]
    X = (sp - sp.mean(0)) / (sp.std(0) + 1e-6)
    with h5py.File(paths[1], "r") as r:
        check(np.array_equal(r["preprocess/neuron_index"][()], np.flatnonzero(keep)), "spont: kept neurons")
    out = check_against_peers(paths[1], "euclidean", "dimension_spont", X)
    for name in ("two_nn/dimension", "mle/dimension"):
        check(abs(out[name] - SPONT_D) <= 0.1 * SPONT_D, f"spont: {name} {out[name]:.3f}, planted {SPONT_D}")
    for ranks in (2, 3):
        compare_runs(paths[1], paths[ranks], f"spont: 1 vs {ranks} ranks", "dimension_spont")
    bad = os.path.join(tmp, "nospont_rec.h5")
    write_spont_recording(bad, with_spont=False)
    env = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1")
    r = subprocess.run([MPIEXEC, "-n", "2", "--oversubscribe", POPCODE, "run", spont_job(tmp, "nospont", bad)], env=env,
                       capture_output=True, text=True, timeout=300)
    check(r.returncode == 3 and "has no /spontaneous" in r.stderr and "nospont_rec.h5" in r.stderr,
          f"spont: a recording without /spontaneous gave exit {r.returncode}: {r.stderr[-300:]!r}")


def check_refused_fit(tmp):
    """A 2-d Gaussian cloud: its outliers put the largest kNN distance beyond the distance histogram's peak,
    where ID_fit.py would fit an empty or one-bin window. The stage must finish (exit 0), give that k a NaN
    D_fit and a k<k>_status naming the reason, and still write the histogram, equal to the anchor's."""
    rec = os.path.join(tmp, "gauss2_rec.h5")
    n = 800
    rng = np.random.default_rng(11)
    q, _ = np.linalg.qr(rng.standard_normal((40, 2)))
    points = (rng.standard_normal((n, 2)) @ q.T).astype(np.float32)  # isometric: distances are the plane's
    with h5py.File(rec, "w") as f:
        f.attrs.update(format="popcode-recording", format_version=1, n_images=n, source="planted 2-d Gaussian", units="a.u.")
        f["responses"] = np.vstack([points, points])
        f["stimulus_id"] = np.tile(np.arange(n, dtype=np.int32), 2)
    job = os.path.join(tmp, "gauss2.toml")
    with open(job, "w") as f:
        f.write(f"""[job]
name = "gauss2"
stages = ["preprocess", "dimension"]
recording = "{rec}"
results = "{tmp}/gauss2.h5"
[preprocess]
zscore_spont = false
spont_pcs = 0
[dimension]
metric = "euclidean"
k = "4,9,13"
""")
    run_job(POPCODE, MPIEXEC, 2, job, "gauss2")
    refused = 0
    with h5py.File(os.path.join(tmp, "gauss2.h5"), "r") as r:
        d = r["dimension"]
        idx, dist = d["knn/index"][()], d["knn/distance"][()]
        p64 = points.astype(float)
        nearest = np.sort(np.linalg.norm(p64[:, None] - p64[None], axis=2), axis=1)[:, 1]
        check(np.allclose(dist[:, 0], nearest, rtol=1e-9, atol=0),
              f"gauss2: preprocessing changed the distances (by up to {np.abs(dist[:, 0] / nearest - 1).max():.1e} relative)")
        for i, k in enumerate(d["k"][()]):
            status = d.attrs[f"k{k}_status"]
            status = status.decode() if isinstance(status, bytes) else str(status)
            g = d[f"k{k}"]
            if "histogram" not in g:
                check(False, f"gauss2 k={k}: no histogram written (status {status!r})")
                continue
            _, counts, edges = scipy_histogram(idx, dist, k)
            check(np.array_equal(g["histogram/counts"][()], counts) and np.array_equal(g["histogram/edges"][()], edges),
                  f"gauss2 k={k}: histogram differs from scipy's (status {status!r})")
            if status == "ok":
                continue
            refused += 1
            check(np.isnan(d["d_fit"][i]) and "d_fit" not in g and "Granata-Carnevale fit" in status,
                  f"gauss2 k={k}: a refused fit must have a NaN d_fit, no k{k}/d_fit and a reason; status {status!r}")
            print(f"gauss2 k={k}: refused ({status}); histogram written, equal to scipy's")
    check(refused >= 1, "gauss2: no k was refused, so the case is not the one intended")


with tempfile.TemporaryDirectory() as tmp:
    check_refused_fit(tmp)
    for metric in ("cosine", "euclidean", "correlation"):
        paths = {ranks: run_dimension(tmp, f"{metric}_{ranks}", ranks, metric) for ranks in (1, 2, 3)}
        check_against_peers(paths[1], metric)
        for ranks in (2, 3):  # 2 ranks also runs the two-pass histogram (store_mb = 0)
            compare_runs(paths[1], paths[ranks], f"{metric}: 1 vs {ranks} ranks")
        # products = float64 at 2 ranks: the participation ratio exact, and the same graph as float32's
        # (which re-ranks its candidates in double), so the same histograms and fits.
        p64 = run_dimension(tmp, f"{metric}_f64", 2, metric, "float64")
        check_against_peers(p64, metric, pr_tol=1e-9)
        compare_runs(paths[1], p64, f"{metric}: float32 vs float64 products")
    check_spontaneous(tmp)

if failures:
    print(f"{len(failures)} failure(s)")
    sys.exit(1)
print("PASS: dimension equals sklearn / scipy / NumPy and agrees at 1, 2 and 3 ranks")
