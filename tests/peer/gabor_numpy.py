"""The anchor's Gabor receptive-field fits (fitGaborRFs.m, estimateRFs.m, gridGabor.m, gaborReduced.m,
gaborFITRect.m) written out in NumPy, for tests/peer/test_rf_peer.py.

Straight from the procedure: every Gabor of the grid is built explicitly with its phase psi and its quadrature
partner psi + pi/2 (no phase shortcut), responses and fits are vectorised over all Gabors at each centre.
Images: each minus the grand mean (popcode's zero point; see solvers/gabor_fit.hpp). Returns a dict keyed as
/rf/gabor in the results file (centres 0-based).
"""
import numpy as np


def gabor_reduced(params, coords):
    """gaborReduced: params rows f, size, ratio, orientation, phase, x0, y0 (each a vector over filters);
    coords (pixels x 2) the x and y coordinate of each pixel. Returns pixels x filters."""
    f, s1, s2, th, psi, x0, y0 = (params[0], params[1], params[1] * params[2], params[3], params[4], params[5], params[6])
    x, y = coords[:, :1], coords[:, 1:]
    xp = (x - x0) * np.cos(th) + (y - y0) * np.sin(th)
    yp = -(x - x0) * np.sin(th) + (y - y0) * np.cos(th)
    return np.exp(-0.5 * (xp ** 2 / s1 ** 2 + yp ** 2 / s2 ** 2)) * np.cos(2 * np.pi * f * xp + psi)


def fit_gabors(images, r1, r2, height, width, freqs, sizes, ratios, n_ori, n_phase, row_offsets, col_offsets):
    """images: S x height x width (stimulus order); r1, r2: S x N single-repeat responses."""
    s = images.shape[0]
    x = images.reshape(s, -1).T.astype(float)  # pixels (row-major) x S
    x = x - x.mean()
    ntr = s // 2
    xtr, xte = x[:, :ntr], x[:, ntr:2 * ntr]
    resp = 0.5 * (r1 + r2)
    b = resp[:ntr].mean(0)
    rtrain, rtest = resp[:ntr] - b, resp[ntr:2 * ntr] - b
    vtrain, vtest = np.mean(rtrain ** 2, 0), np.mean(rtest ** 2, 0)
    nn = resp.shape[1]
    rows, cols = np.divmod(np.arange(height * width), width)  # pixel q = row * width + col

    # estimateRFs: blob filters on every pixel; x is the column, y the row; candidates in MATLAB order.
    cand = np.arange(height * width)
    crow, ccol = cand % height, cand // height
    blob = np.array([np.full(len(cand), 0.01), np.full(len(cand), 10.0), np.ones(len(cand)), np.zeros(len(cand)),
                     np.zeros(len(cand)), ccol + 1.0, crow + 1.0])
    resp_gb = gabor_reduced(blob, np.column_stack([cols + 1.0, rows + 1.0])).T @ xtr  # candidates x ntr
    a = resp_gb - resp_gb.mean(1, keepdims=True)
    c = rtrain - rtrain.mean(0)
    cc = (a @ c) / np.sqrt(np.sum(a * a, 1))[:, None] / np.sqrt(np.sum(c * c, 0))[None, :]
    ip = np.argmax(np.abs(cc), 0)
    scan_row, scan_col = crow[ip], ccol[ip]
    yp = np.median(scan_row + 1.0) + np.asarray(row_offsets, float)
    xp = np.median(scan_col + 1.0) + np.asarray(col_offsets, float)

    # gridGabor: ndgrid order, frequency fastest, phase slowest; x is the row, y the column.
    grids = np.meshgrid(freqs, sizes, ratios, np.arange(n_ori) * np.pi / n_ori, np.arange(n_phase) * 2 * np.pi / n_phase,
                        indexing="ij")
    A = np.array([g.ravel(order="F") for g in grids])
    coords = np.column_stack([rows + 1.0, cols + 1.0])
    ng = A.shape[1]
    out = {k: np.full(nn, np.nan) for k in ("centre_row", "centre_col", "c_simple", "c_complex", "b_simple", "b_complex",
                                            "variance_explained_train", "variance_explained_test")}
    out["index"] = np.full(nn, -1)
    vmax = np.full(nn, -100.0)
    test_pred = np.zeros((ntr, nn))
    for row0 in yp:
        for col0 in xp:
            at = np.vstack([A, np.full(ng, row0), np.full(ng, col0)])
            at2 = at.copy()
            at2[4] += np.pi / 2
            fg1, fg2 = gabor_reduced(at, coords), gabor_reduced(at2, coords)

            def responses(img):
                g1 = fg1.T @ img
                g2 = np.sqrt(g1 ** 2 + (fg2.T @ img) ** 2)
                return np.maximum(0, g1), g2

            g1, g2 = responses(xtr)
            m1, m2 = g1.mean(1, keepdims=True), g2.mean(1, keepdims=True)
            g1c, g2c = g1 - m1, g2 - m2
            g11, g22, g12 = np.sum(g1c ** 2, 1), np.sum(g2c ** 2, 1), np.sum(g1c * g2c, 1)
            idet = 1 / (g11 * g22 - g12 ** 2)
            y1, y2 = g1c @ rtrain, g2c @ rtrain
            c1 = np.maximum(0, (g22[:, None] * y1 - g12[:, None] * y2) * idet[:, None])
            c2 = np.maximum(0, (-g12[:, None] * y1 + g11[:, None] * y2) * idet[:, None])
            vexp = c1 * y1 + c2 * y2
            vexp[~np.isfinite(vexp)] = -np.inf
            im = np.argmax(vexp, 0)
            k = np.arange(nn)
            pred = c1[im, k] * g1c[im].T + c2[im, k] * g2c[im].T  # ntr x nn
            vv1 = 1 - np.mean((pred - rtrain) ** 2, 0) / vtrain
            better = vv1 > vmax
            t1, t2 = responses(xte)
            tpred = c1[im, k] * (t1[im] - m1[im]).T + c2[im, k] * (t2[im] - m2[im]).T
            vv2 = 1 - np.mean((tpred - rtest) ** 2, 0) / vtest
            vmax[better] = vv1[better]
            for key, val in (("centre_row", row0 - 1), ("centre_col", col0 - 1)):
                out[key][better] = val
            out["index"][better] = im[better]
            out["c_simple"][better] = c1[im, k][better]
            out["c_complex"][better] = c2[im, k][better]
            out["b_simple"][better] = m1[im, 0][better]
            out["b_complex"][better] = m2[im, 0][better]
            out["variance_explained_train"][better] = vv1[better]
            out["variance_explained_test"][better] = vv2[better]
            test_pred[:, better] = tpred[:, better]
    t1r, t2r = r1[ntr:2 * ntr] - b, r2[ntr:2 * ntr] - b
    out["normalized_variance_explained"] = 1 - np.sum((t1r - test_pred) * (t2r - test_pred)) / np.sum(t1r * t2r)
    out["scan_row"], out["scan_col"] = scan_row.astype(float), scan_col.astype(float)
    out["grid_rows"], out["grid_cols"] = yp - 1, xp - 1
    return out
