"""The Granata-Carnevale fit of ID_fit.py (dgranata/Intrinsic-Dimension), steps #1-#5 with the default
options, as direct NumPy on a histogram: the reference for popcode's solvers/intrinsic_dimension.cpp, used
by tests/peer/test_dimension_peer.py and bench/dimension/idfit_peer.py. The two one-parameter curve fits
are written as their closed-form least-squares optima."""
import numpy as np


def numpy_gc_fit(counts, edges, avg, std, radius, dmin_max=25):
    """ID_fit.py steps #1-#5 with the default options, on a histogram."""
    n_bins = len(counts)
    dx = edges[1] - edges[0]
    rmax = edges[np.argmax(counts)] + dx / 2
    x = edges[:n_bins] + dx / 2
    y = counts.astype(float)
    sel = (x > rmax - std) & (x < rmax + std / 2.0) & (y > 0.000001)
    a0, b0, c0 = np.polyfit(x[sel], np.log(y[sel]), 2)
    rmax_old, std_old = rmax, std
    rmax = -b0 / a0 / 2.0
    if a0 < 0 and abs(rmax - rmax_old) < std_old / 2 + dx:
        std = np.sqrt(-1 / a0 / 2.0)
    else:
        rmax, std = avg, std_old
    sel = (y > 0.000001) & (x > rmax - std) & (x < rmax + std / 2.0 + dx)
    a, b, c = np.polyfit(x[sel], np.log(y[sel]), 2)
    rmax_old, std_old = rmax, std
    if a < 0:
        rmax, std = -b / a / 2.0, np.sqrt(-1 / a / 2.0)
    rmin = max(rmax - 2 * std - dx / 2, 0.0)
    if rmin < radius:
        rmin = radius
    rM = rmax + dx / 4
    if abs(rmax - rmax_old) > std_old / 4 + dx:
        rmax, a, b, c = rmax_old, a0, b0, c0
        if rmin < radius:
            rmin = radius
        rM = rmax + dx / 4
    sel = (x > rmin) & (x <= rM) & (y > 0.000001)
    X = x[sel] / rmax
    Y = np.log(y[sel]) - (4 * a * c - b ** 2) / 4.0 / a
    q = (X - 1) ** 2
    L = np.log(np.sin(X * np.pi / 2.0))
    ratio = np.sqrt(-2 * np.sum(Y * q) / np.sum(q * q))
    dfit = 1 + np.sum(Y * L) / np.sum(L * L)
    res = np.array([np.linalg.norm((D - 1) * L - Y) / np.sqrt(len(Y)) for D in range(1, dmin_max + 1)])
    return dict(r_max=rmax, sigma=std, ratio=ratio, d_fit=dfit, d_min=int(np.argmin(res)) + 1, rmsd=res, x=X, y=Y)
