#!/usr/bin/python3
"""Peer equivalence of the `rf` stage, run by ctest as rf_peer.

Runs simulate -> preprocess (responses saved) -> rf on a small recording at 1, 2 and 3 ranks and checks,
against NumPy on the same preprocessed responses and images:
  - reduced-rank regression as the anchor computes it (fitLowRankRFs.m: top response PCs by SVD, CanonCor2 with
    the explicit pixels x pixels covariance, its inverse square root by eigh, SVD of M, rank-25 RF maps
    b a^T C^T): every RF map, the rank sweep of the normalised test variance explained and the per-neuron
    variance explained, to 1e-8;
  - the full-rank ridge solved directly in pixel space (np.linalg.solve), maps and metrics;
  - the response-weighted average (STA);
  - the retinotopic least-squares map (np.linalg.lstsq on the centres popcode found);
  - the Gabor fits (gabor_fit, a reduced grid of 128 Gabors at 3 x 3 centres) against the anchor's procedure
    written out in NumPy with explicit quadrature filters (tests/peer/gabor_numpy.py): scanned centres, kept
    Gabor and centre, coefficients, train/test and normalised variance explained;
  - everything agrees across rank counts;
  - planted truth (2,800 images as the seed recordings, every neuron's signal from its own Gabor filter,
    default noise): the ridge and STA maps correlate with the planted filters at a median >= 0.7, the centres
    lie within 2.5 px of the planted ones (median), and the retinotopic map explains >= 90% of the centres'
    variance on both axes;
  - planted Gabor truth for the Gabor fits (300 neurons x 1,000 images of 36 x 64 px, every neuron a rectified
    simple cell, the anchor's full grid of 7,168 Gabors at 63 centres): median orientation error below half the
    grid's 22.5 degree step, median centre error below 3.6 px (the 5 px centre grid), kept frequency correlating
    >= 0.8 with the planted one, the cells found simple (median simple fraction >= 0.9), and a higher normalised
    test variance explained than the linear ridge;
  - a planted low-rank population (simulate rf_rank = 10: every neuron's filter a mix of 10 shared Gabors, the
    model reduced-rank regression assumes; 2,800 images, default noise), RRR at rank 10: with lambda = 1 (the
    better of 0.005 and 1 by the stage's own normalised test variance explained, no truth used to choose) the
    RRR maps correlate with the planted filters at a median >= 0.8 and beat the full-rank ridge's; the stage's
    correlations equal NumPy's from /truth/rf_basis and /truth/rf_coefficients and the stored maps.
Usage: test_rf_peer.py POPCODE MPIEXEC. Exit 77 (skip) without numpy or h5py.
"""
import os
import sys
import tempfile

try:
    import h5py
    import numpy as np
except ImportError as e:
    print(f"SKIP: {e} (install python3-numpy python3-h5py)")
    sys.exit(77)
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gabor_numpy import fit_gabors  # noqa: E402
from popcode_run import run_job  # noqa: E402

POPCODE, MPIEXEC = sys.argv[1], sys.argv[2]
LAMBDA, RIDGE_LAMBDA, RANK, PCS = 0.005, 3.0, 25, 100
GABOR = dict(freqs=[0.03, 0.09], sizes=[2.0, 4.0], ratios=[1.0, 2.0], n_ori=4, n_phase=4, row_offsets=[-4.0, 0.0, 4.0],
             col_offsets=[-6.0, 0.0, 6.0])
GABOR_JOB = ("gabor_fit = true\ngabor_frequencies = \"0.03,0.09\"\ngabor_sizes = \"2,4\"\ngabor_ratios = \"1,2\"\n"
             "gabor_orientations = 4\ngabor_phases = 4\ngabor_row_offsets = \"-4,0,4\"\ngabor_col_offsets = \"-6,0,6\"\n")
GABOR_KEYS = ["scan_row", "scan_col", "centre_row", "centre_col", "index", "c_simple", "c_complex", "b_simple", "b_complex",
              "variance_explained_train", "variance_explained_test", "normalized_variance_explained", "grid_rows",
              "grid_cols"]
failures = []


def check(ok, what):
    if not ok:
        failures.append(what)
        print("FAIL:", what)


def close(a, b, tol, what):
    a, b = np.asarray(a, float), np.asarray(b, float)
    err = np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-300)
    check(a.shape == b.shape and err <= tol, f"{what}: relative error {err:.2e} > {tol:g}")


def run(tmp, ranks, planted=False):
    name = f"rf{ranks}" + ("_planted" if planted else "")
    job = os.path.join(tmp, f"{name}.toml")
    sim = ("neurons = 1000\nimages = 2800\nrf_fraction = 1.0\nseed = 3\n" if planted else
           "neurons = 300\nimages = 400\nheight = 12\nwidth = 18\nrf_fraction = 1.0\nspont_timepoints = 300\nseed = 11\n")
    rf = "store_maps = false\n" if planted else (f"lambda = {LAMBDA}\nridge_lambda = {RIDGE_LAMBDA}\nrank = {RANK}\n"
                                                  f"response_pcs = {PCS}\nretinotopy_min_ve = -1e9\n{GABOR_JOB}")
    with open(job, "w") as f:
        f.write(f"""[job]
name = "{name}"
stages = ["simulate", "preprocess", "rf"]
recording = "{tmp}/{name}_rec.h5"
results = "{tmp}/{name}.h5"
[simulate]
{sim}[preprocess]
save_responses = {"false" if planted else "true"}
spont_pcs = 8
[rf]
{rf}""")
    run_job(POPCODE, MPIEXEC, ranks, job, name)
    return os.path.join(tmp, f"{name}.h5")


def run_lowrank(tmp, lam):
    name = f"rf_lowrank_{lam}"
    job = os.path.join(tmp, f"{name}.toml")
    with open(job, "w") as f:
        f.write(f"""[job]
name = "{name}"
stages = ["simulate", "preprocess", "rf"]
recording = "{tmp}/lowrank_rec.h5"
results = "{tmp}/{name}.h5"
[simulate]
neurons = 1000
images = 2800
rf_fraction = 1.0
rf_rank = 10
seed = 3
[preprocess]
spont_pcs = 8
[rf]
rank = 10
lambda = {lam}
store_maps = {"true" if lam == 1 else "false"}
""")
    run_job(POPCODE, MPIEXEC, 2, job, name)
    return os.path.join(tmp, f"{name}.h5")


def pearson_rows(a, b):
    a = a - a.mean(1, keepdims=True)
    b = b - b.mean(1, keepdims=True)
    return np.sum(a * b, 1) / np.sqrt(np.sum(a * a, 1) * np.sum(b * b, 1))


def check_gabor_planted(tmp):
    name = "rf_gabor_planted"
    job = os.path.join(tmp, f"{name}.toml")
    with open(job, "w") as f:
        f.write(f"""[job]
name = "{name}"
stages = ["simulate", "preprocess", "rf"]
recording = "{tmp}/gabor_rec.h5"
results = "{tmp}/{name}.h5"
[simulate]
neurons = 300
images = 1000
rf_fraction = 1.0
seed = 3
[rf]
store_maps = false
gabor_fit = true
""")
    run_job(POPCODE, MPIEXEC, 2, job, name)
    with h5py.File(os.path.join(tmp, f"{name}.h5"), "r") as f, h5py.File(os.path.join(tmp, "gabor_rec.h5"), "r") as r:
        g = f["rf/gabor"]
        truth = r["truth/rf_params"][()][f["rf/neuron_index"][()]]  # cx, cy, theta, freq, phase, sigma, aspect
        got = {k: g[k][()] for k in ("centre_row", "centre_col", "orientation", "frequency", "simple_fraction")}
        nve, ridge = float(g["normalized_variance_explained"][()]), float(f["rf/ridge/normalized_variance_explained"][()])
    centre = np.median(np.hypot(got["centre_row"] - truth[:, 1], got["centre_col"] - truth[:, 0]))
    # The simulator's carrier runs along u = dx cos(theta) + dy sin(theta) (x = column); the anchor's along
    # x' = d_row cos(t) + d_col sin(t): the same line for t = pi/2 - theta (mod pi).
    d = np.abs((np.pi / 2 - truth[:, 2]) % np.pi - got["orientation"] % np.pi)
    orient = np.degrees(np.median(np.minimum(d, np.pi - d)))
    freq = np.corrcoef(truth[:, 3], got["frequency"])[0, 1]
    simple = np.median(got["simple_fraction"])
    print(f"Gabor fits on planted Gabors: orientation error {orient:.2f} deg, centre error {centre:.2f} px, frequency "
          f"correlation {freq:.3f}, simple fraction {simple:.2f}; normalised test VE {nve:.4f} (ridge {ridge:.4f})")
    check(orient < 11.25, f"Gabor fits: median orientation error {orient:.2f} degrees")
    check(centre < 3.6, f"Gabor fits: median centre error {centre:.2f} px")
    check(freq >= 0.8, f"Gabor fits: frequency correlation {freq:.3f}")
    check(simple >= 0.9, f"Gabor fits: median simple fraction {simple:.2f} for planted simple cells")
    check(nve > ridge, f"Gabor fits explain less test variance ({nve:.4f}) than the ridge ({ridge:.4f})")


def check_lowrank(tmp):
    out = {}
    for lam in (0.005, 1):
        with h5py.File(run_lowrank(tmp, lam), "r") as f:
            t = f["rf/truth"]
            out[lam] = {"ve": float(f["rf/rrr/normalized_variance_explained"][()]), "rrr": float(t["median_corr_rrr"][()]),
                        "ridge": float(t["median_corr_ridge"][()]), "sta": float(t["median_corr_sta"][()]),
                        "rank": int(t["planted_rank"][()])}
            if lam == 1:
                maps = {k: f[f"rf/{k}/rf"][()] for k in ("rrr", "ridge", "sta")}
                corr = {k: t[f"corr_{k}"][()] for k in ("rrr", "ridge", "sta")}
                kept = f["preprocess/neuron_index"][()]
                centre = t["centre_error"][()]
    print("low-rank planted population:", "; ".join(f"lambda {k}: " + ", ".join(f"{n} {v:.3f}" for n, v in r.items())
                                                    for k, r in out.items()))
    check(out[1]["ve"] > out[0.005]["ve"], f"lambda 1 should explain more test variance than 0.005: {out}")
    best = out[1]
    check(best["rank"] == 10, f"planted rank written as {best['rank']}")
    check(best["rrr"] >= 0.8, f"RRR maps against the planted low-rank filters: median correlation {best['rrr']:.3f}")
    check(best["rrr"] > best["ridge"], f"RRR ({best['rrr']:.3f}) should beat the full-rank ridge ({best['ridge']:.3f}) here")
    check(np.all(np.isnan(centre)), "a low-rank population has no planted centres")
    with h5py.File(os.path.join(tmp, "lowrank_rec.h5"), "r") as f:
        basis = f["truth/rf_basis"][()].reshape(10, -1)
        filters = f["truth/rf_coefficients"][()][kept] @ basis
    for k in maps:
        close(corr[k], pearson_rows(maps[k], filters), 1e-9, f"low-rank {k}: correlation with the planted filters")


def load(path):
    with h5py.File(path, "r") as f:
        g = f["rf"]
        out = {k: g[k][()] for k in ["rrr/rf", "ridge/rf", "sta/rf", "rrr/rank_sweep", "rrr/neuron_variance_explained",
                                     "ridge/neuron_variance_explained", "ridge/normalized_variance_explained",
                                     "rrr/variance_explained", "centre_x", "centre_y", "retinotopy/coef_x",
                                     "retinotopy/coef_y", "retinotopy/r2_x", "retinotopy/r2_y", "neuron_index", "image_ids"]}
        out["resp"] = f["preprocess/repeat_responses"][()]
        if "gabor" in g:
            out.update({f"gabor/{k}": g["gabor"][k][()] for k in GABOR_KEYS})
    return out


def peer(res, rec):
    with h5py.File(rec, "r") as f:
        imgs = f["images"][()].astype(float)
        pos = f["neurons/position"][()]
    ids = res["image_ids"]
    s = len(ids)
    x = imgs[ids].reshape(s, -1).T  # P x S
    x = x - x.mean()
    x = x / np.linalg.norm(x, axis=0)
    p = x.shape[0]
    r1, r2 = res["resp"][0], res["resp"][1]  # S x N
    y = 0.5 * (r1 + r2)
    b0 = y.mean(0)
    y = y - b0
    ntr = (s + 1) // 2
    tr, te = slice(0, ntr), slice(ntr, s)
    # Response PCs, as svdecon in the anchor.
    a_, b_, ct = np.linalg.svd(y, full_matrices=False)
    k = min(PCS, y.shape[1], s)
    v = a_[:, :k] * b_[:k]
    c = ct[:k].T
    # CanonCor2 with the explicit covariance.
    big = np.cov(np.hstack([x[:, tr].T, v[tr]]).T)
    cxx = big[:p, :p]
    cyx = big[p:, :p]
    mu = LAMBDA * np.trace(cxx) / p
    w, u = np.linalg.eigh(cxx + mu * np.eye(p))
    cxxmh = (u / np.sqrt(w)) @ u.T
    d, sv, ct2 = np.linalg.svd(cyx @ cxxmh, full_matrices=False)
    b = cxxmh @ ct2.T
    a = d * sv
    rank = min(RANK, len(sv))
    rf = b[:, :rank] @ a[:, :rank].T @ c.T  # P x N
    xte = x[:, te]
    rt1, rt2 = r1[te] - b0, r2[te] - b0
    sweep = []
    for j in range(1, rank + 1):
        pred = xte.T @ b[:, :j] @ a[:, :j].T @ c.T
        sweep.append(1 - np.sum((rt1 - pred) * (rt2 - pred)) / np.sum(rt1 * rt2))
    pred = xte.T @ rf
    yte = y[te]
    neuron_ve = 1 - np.mean((pred - yte) ** 2, 0) / np.mean(yte ** 2, 0)
    pop_ve = 1 - np.mean(np.mean((pred - yte) ** 2, 0)) / np.mean(np.mean(yte ** 2, 0))
    # Ridge in pixel space.
    xc = x[:, tr] - x[:, tr].mean(1, keepdims=True)
    ytr = y[tr] - y[tr].mean(0)
    cov_x = xc @ xc.T / (ntr - 1)
    mu_r = RIDGE_LAMBDA * np.trace(cov_x) / p
    beta = np.linalg.solve(cov_x + mu_r * np.eye(p), xc @ ytr / (ntr - 1))
    ridge_pred = y[tr].mean(0) + (xte - x[:, tr].mean(1, keepdims=True)).T @ beta
    ridge_nve = 1 - np.sum((rt1 - ridge_pred) * (rt2 - ridge_pred)) / np.sum(rt1 * rt2)
    ridge_ve = 1 - np.mean((ridge_pred - yte) ** 2, 0) / np.mean(yte ** 2, 0)
    # STA over all images.
    xall = x - x.mean(1, keepdims=True)
    wts = y - y.min(0)
    sta = xall @ wts / wts.sum(0)
    # Retinotopy on popcode's centres.
    px, py = pos[res["neuron_index"], 0], pos[res["neuron_index"], 1]
    g = np.column_stack([np.ones_like(px), px, py])
    out = {"rrr/rf": rf.T, "ridge/rf": beta.T, "sta/rf": sta.T, "rrr/rank_sweep": sweep,
           "rrr/neuron_variance_explained": neuron_ve, "rrr/variance_explained": pop_ve,
           "ridge/normalized_variance_explained": ridge_nve, "ridge/neuron_variance_explained": ridge_ve}
    for axis, centre in [("x", res["centre_x"]), ("y", res["centre_y"])]:
        coef = np.linalg.lstsq(g, centre, rcond=None)[0]
        out[f"retinotopy/coef_{axis}"] = coef
        out[f"retinotopy/r2_{axis}"] = 1 - np.sum((centre - g @ coef) ** 2) / np.sum((centre - centre.mean()) ** 2)
    return out


with tempfile.TemporaryDirectory() as tmp:
    results = {r: load(run(tmp, r)) for r in (1, 2, 3)}
    ref = peer(results[1], os.path.join(tmp, "rf1_rec.h5"))
    for key, want in ref.items():
        tol = 1e-8 if key.startswith(("rrr", "ridge", "sta")) else 1e-9
        close(results[1][key], want, tol, f"{key} against NumPy")
    print(f"rank sweep (normalised test variance explained): rank 1 {ref['rrr/rank_sweep'][0]:.4f}, "
          f"rank {len(ref['rrr/rank_sweep'])} {ref['rrr/rank_sweep'][-1]:.4f}; ridge {ref['ridge/normalized_variance_explained']:.4f}")
    with h5py.File(os.path.join(tmp, "rf1_rec.h5"), "r") as f:
        imgs = f["images"][()][results[1]["image_ids"]]
        height, width = imgs.shape[1:]
    resp = results[1]["resp"]
    gref = fit_gabors(imgs, resp[0], resp[1], height, width, **GABOR)
    for key in GABOR_KEYS:
        got, want = results[1][f"gabor/{key}"], gref[key]
        if key in ("scan_row", "scan_col", "centre_row", "centre_col", "index", "grid_rows", "grid_cols"):
            check(np.array_equal(got, want), f"gabor/{key}: {np.sum(np.asarray(got) != np.asarray(want))} neurons differ from NumPy")
        else:
            close(got, want, 1e-8, f"gabor/{key} against NumPy")
        ref[f"gabor/{key}"] = want
    print(f"Gabor fits: normalised test variance explained {gref['normalized_variance_explained']:.4f}, median test "
          f"variance explained {np.median(gref['variance_explained_test']):.4f}, "
          f"{len(np.unique(gref['index']))} distinct Gabors kept: equal to NumPy")
    for ranks in (2, 3):
        for key in ref:
            close(results[ranks][key], results[1][key], 1e-9, f"{key} at {ranks} ranks against 1 rank")
        check(np.array_equal(results[ranks]["neuron_index"], results[1]["neuron_index"]), f"neuron order at {ranks} ranks")
    with h5py.File(run(tmp, 2, planted=True), "r") as f:
        t = f["rf/truth"]
        got = {k: float(t[k][()]) for k in ["median_corr_ridge", "median_corr_sta", "median_corr_rrr", "median_centre_error"]}
        got["r2_x"], got["r2_y"] = float(f["rf/retinotopy/r2_x"][()]), float(f["rf/retinotopy/r2_y"][()])
    print("planted truth:", ", ".join(f"{k} {v:.3f}" for k, v in got.items()))
    check(got["median_corr_ridge"] >= 0.7, f"ridge maps against the planted filters: median correlation {got['median_corr_ridge']:.3f}")
    check(got["median_corr_sta"] >= 0.7, f"STA maps against the planted filters: median correlation {got['median_corr_sta']:.3f}")
    check(got["median_centre_error"] <= 2.5, f"median centre error {got['median_centre_error']:.2f} px")
    check(min(got["r2_x"], got["r2_y"]) >= 0.9, f"retinotopy R^2 {got['r2_x']:.3f} / {got['r2_y']:.3f}")
    check_lowrank(tmp)
    check_gabor_planted(tmp)

if failures:
    sys.exit(f"{len(failures)} check(s) failed")
print("rf peer equivalence: all checks passed")
