#!/usr/bin/env python3
"""Peer-equivalence check: a plain NumPy re-implementation of the Stringer et al. 2019 chain
(processResp/loadProc2800.m + compute_means.m, then powerlaws/shuffledSpectrum.m with no swapping) applied
to a popcode recording, compared with popcode's /preprocess/repeat_responses and /spectrum; and the
gray-screen statistics (/preprocess/gray_mean, gray_sd: the gray screens through the same z-scoring,
projection and centring).

Usage: shuffled_spectrum_numpy.py RECORDING.h5 RESULTS.h5 SPONT_PCS
RESULTS.h5 must come from `popcode spectrum --nshuff 0 --set preprocess.save_responses=true`.
Exits 0 when everything agrees to 1e-6 relative, 1 otherwise, 77 (skip) without numpy/h5py.
Written for this test from the published algorithm; it shares no code with popcode.
"""
import sys

try:
    import numpy as np
    import h5py
except ImportError as e:  # pragma: no cover
    print(f"SKIP: {e}")
    sys.exit(77)


def load_proc(rec, n_pc_spont):
    resp = rec["responses"][...].astype(np.float64)
    istim = rec["stimulus_id"][...].astype(np.int64)
    times = rec["presentation_time"][...] if "presentation_time" in rec else np.arange(len(istim), dtype=float)
    keep = istim >= 0                      # gray screens (id -1) dropped
    gray = resp[~keep]                     # ... and carried aside for their statistics
    gray[np.isnan(gray)] = 0
    resp0 = resp[keep]
    istim = istim[keep]
    times = times[keep]
    resp0[np.isnan(resp0)] = 0
    spont = rec["spontaneous"][...].astype(np.float64)
    mu = spont.mean(axis=0)
    sd = spont.std(axis=0) + 1e-6          # population std, as std(x, 1, 1) in MATLAB
    resp0 = (resp0 - mu) / sd
    gray = (gray - mu) / sd
    if n_pc_spont > 0:
        fs0 = (spont - mu) / sd
        _, _, vt = np.linalg.svd(fs0, full_matrices=False)
        v = vt[:n_pc_spont].T
        resp0 = resp0 - (resp0 @ v) @ v.T
        gray = gray - (gray @ v) @ v.T
    centre = resp0.mean(axis=0)
    resp0 = resp0 - centre
    gray = gray - centre
    gray_stats = (gray.mean(axis=0), gray.std(axis=0) + 1e-6)
    # compute_means(istim, resp0, 2, 0): first half / second half of each image's presentations in time order
    images = np.unique(istim)
    a = np.full((len(images), resp0.shape[1], 2), np.nan)
    for i, img in enumerate(images):
        this = np.where(istim == img)[0]
        this = this[np.argsort(times[this], kind="stable")]
        m = len(this)
        for k in range(2):
            inds = int(np.ceil(m * k / 2)) + np.arange(m // 2)
            if len(inds):
                a[i, :, k] = resp0[this[inds]].mean(axis=0)
    ok = ~np.isnan(a.sum(axis=(1, 2)))
    return a[ok], images[ok], gray_stats


def shuffled_spectrum_no_swap(resp_b0):
    """shuffledSpectrum(respB0, 1): one pass, repeat 1 trains and repeat 2 tests."""
    nstims = resp_b0.shape[0]
    stacked = np.concatenate([resp_b0[:, :, 0], resp_b0[:, :, 1]], axis=0)   # [R1; R2]
    full_cov = stacked @ stacked.T
    istims = np.arange(nstims)                                               # no stimulus swapped
    a, b, _ = np.linalg.svd(full_cov[np.ix_(istims, istims)])
    proj = resp_b0[:, :, 0].T @ a / np.sqrt(b)                               # R_tr' A B^-1/2
    cproj0 = resp_b0[:, :, 0] @ proj
    cproj1 = resp_b0[:, :, 1] @ proj
    ss = (cproj0 * cproj1).sum(axis=0)
    ns = (cproj0 ** 2).sum(axis=0) + (cproj1 ** 2).sum(axis=0) - ss
    return ss, ns


def main():
    rec_path, res_path, n_pc = sys.argv[1], sys.argv[2], int(sys.argv[3])
    with h5py.File(rec_path, "r") as rec:
        resp_b, images, gray_stats = load_proc(rec, n_pc)
    with h5py.File(res_path, "r") as res:
        ours_rep = res["preprocess/repeat_responses"][...]          # [2, S, N]
        ours_images = res["preprocess/image_ids"][...]
        ours_ss = res["spectrum/signal_variance_raw"][...]
        ours_ss_norm = res["spectrum/signal_variance"][...]
        ours_ns = res["spectrum/noise_variance"][...]
        ours_gray = (res["preprocess/gray_mean"][...], res["preprocess/gray_sd"][...])
    failures = []
    if not np.array_equal(images, ours_images):
        failures.append("image ids differ")
    ref_rep = np.moveaxis(resp_b, 2, 0)
    err = np.abs(ours_rep - ref_rep).max() / np.abs(ref_rep).max()
    print(f"preprocessed responses: max |diff| / max |ref| = {err:.3e}")
    if err > 1e-6:
        failures.append(f"preprocessed responses differ by {err:.3e}")
    for name, ours, ref in [("gray-screen means", ours_gray[0], gray_stats[0]), ("gray-screen s.d.", ours_gray[1], gray_stats[1])]:
        err_g = np.abs(ours - ref).max() / np.abs(ref).max()
        print(f"{name}: max |diff| / max |ref| = {err_g:.3e}")
        if not err_g <= 1e-6:
            failures.append(f"{name} differ by {err_g:.3e}")
    ss, ns = shuffled_spectrum_no_swap(resp_b)
    k = len(ours_ss)
    ss, ns = ss[:k], ns[:k]
    scale = np.abs(ss).max()
    err_ss = np.abs(ours_ss - ss).max() / scale
    rel_top = np.max(np.abs(ours_ss[:500] - ss[:500]) / np.abs(ss[:500]))
    err_norm = np.abs(ours_ss_norm - ss / ss.sum()).max() / np.abs(ss / ss.sum()).max()
    err_ns = np.abs(ours_ns - ns).max() / np.abs(ns).max()
    print(f"signal spectrum: max |diff| / max = {err_ss:.3e}; worst relative error over PCs 1-500 = {rel_top:.3e}")
    print(f"normalised signal spectrum: {err_norm:.3e}; noise spectrum: {err_ns:.3e}")
    for name, value in [("signal", err_ss), ("signal (PCs 1-500, per component)", rel_top),
                        ("normalised signal", err_norm), ("noise", err_ns)]:
        if not value <= 1e-6:
            failures.append(f"{name} spectrum differs by {value:.3e}")
    if failures:
        print("FAIL: " + "; ".join(failures))
        return 1
    print("PASS: popcode equals the NumPy shuffledSpectrum to 1e-6")
    return 0


if __name__ == "__main__":
    sys.exit(main())
