#!/usr/bin/python3
"""The Python peer of popcode's dimension stage, as the Granata-Carnevale procedure runs today: sklearn
kneighbors_graph (brute force, the metric given), scipy.sparse.csgraph.shortest_path(directed=False) over all
pairs (what sklearn's graph_shortest_path became), ID_fit.py's connectivity filter, upper triangle and
np.histogram, then the fit (tests/peer/idfit_numpy.py).

Usage: idfit_peer.py PREPARED.h5 K METRIC. Points = both repeats of /preprocess/repeat_responses (2S points,
the stage's points = "both"). Prints JSON: seconds per phase and in all, D_fit, D_min, pairs.
"""
import json
import os
import sys
import time

import h5py
import numpy as np
from scipy.sparse.csgraph import shortest_path
from sklearn.neighbors import kneighbors_graph

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tests", "peer"))
from idfit_numpy import numpy_gc_fit  # noqa: E402


def anchor_fit(X, k, metric):
    """The procedure on points X [n, features]: returns the fit and the seconds of each phase."""
    t0 = time.perf_counter()
    A = kneighbors_graph(X, k, metric=metric, mode="distance")  # brute force for cosine
    t1 = time.perf_counter()
    C = shortest_path(A, directed=False)
    t2 = time.perf_counter()
    C[~np.isfinite(C)] = 0
    n = C.shape[0]
    for i in range(n):
        if np.count_nonzero(C[i]) <= n / 2.0:
            C[i] = 0
    dist = C[np.nonzero(np.triu(C, 1))]
    counts, edges = np.histogram(dist, 50)
    t3 = time.perf_counter()
    fit = numpy_gc_fit(counts, edges, dist.mean(), dist.std(), A.max())
    t4 = time.perf_counter()
    return fit, {"knn_s": t1 - t0, "shortest_path_s": t2 - t1, "histogram_s": t3 - t2, "fit_s": t4 - t3, "seconds": t4 - t0,
                 "pairs": int(dist.size)}


if __name__ == "__main__":
    path, k, metric = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    with h5py.File(path, "r") as f:
        r = f["preprocess/repeat_responses"][()]
    X = np.concatenate([r[0], r[1]], axis=0)  # [2S, N]
    del r
    fit, times = anchor_fit(X, k, metric)
    print(json.dumps({**times, "d_fit": float(fit["d_fit"]), "d_min": int(fit["d_min"])}))
