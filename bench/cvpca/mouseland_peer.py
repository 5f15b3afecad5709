#!/usr/bin/env python3
"""The Python peer of the cvPCA benchmark: MouseLand's Python cross-validated PCA
(stringer-pachitariu-et-al-2018b python/utils.py, cvPCA + shuff_cvPCA: sklearn PCA with
min(1024, stimuli) components fitted on repeat 1 with neurons as samples), re-typed from the published
algorithm and fed the same preprocessed responses and the same repeat swaps as popcode.

Usage: mouseland_peer.py RESULTS.h5 OUT.npy
  RESULTS.h5: a popcode results file with /preprocess/repeat_responses and /spectrum/swapped.
Prints one JSON line: {"seconds": ..., "passes": ..., "components": ...}; the timing covers the passes only.
"""
import json
import sys
import time

import h5py
import numpy as np
from sklearn.decomposition import PCA


def one_pass(x):
    """x: 2 x stimuli x neurons. Returns the cross-validated signal spectrum of one pass."""
    pca = PCA(n_components=min(1024, x.shape[1])).fit(x[0].T)
    scaled = pca.components_.T / pca.singular_values_
    projection = x[0].T @ scaled
    train = x[0] @ projection
    test = x[1] @ projection
    return (train * test).sum(axis=0)


def main():
    with h5py.File(sys.argv[1], "r") as f:
        x = f["preprocess/repeat_responses"][...]
        swapped = f["spectrum/swapped"][...].astype(bool)
    spectra = []
    start = time.perf_counter()
    for mask in swapped:
        xs = x.copy()
        xs[0, mask], xs[1, mask] = x[1, mask], x[0, mask]
        spectra.append(one_pass(xs))
    seconds = time.perf_counter() - start
    np.save(sys.argv[2], np.mean(spectra, axis=0))
    print(json.dumps({"seconds": seconds, "passes": len(swapped), "components": len(spectra[0])}))


if __name__ == "__main__":
    main()
