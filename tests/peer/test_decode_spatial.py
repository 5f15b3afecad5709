#!/usr/bin/python3
"""The decode-spatial stage end to end, run by ctest as decode_spatial.

The simulator's classes are carried by neurons with random orientation preferences, which no convolution can
pool, so the test plants a spatial code instead: a simulated recording (positions, planes, classes, gray
screens, spontaneous activity) whose responses are replaced by noise plus, for an image of class c, a bump of
activity over the neurons within 250 um of the class's own point of the field of view. On it:
  - the 2D CNN (planes as channels) and the 3D CNN decode the classes far above chance (balanced accuracy
    >= 0.8, chance 0.25), and with labels shuffled over images at chance;
  - without batchnorm and dropout the 2D CNN gives the same predictions at 1, 2 and 3 ranks (>= 98%);
  - the stored cell of every neuron equals a NumPy binning of its position and plane on the grid;
  - the stored metrics equal a NumPy recount of the stored predictions;
  - a grid whose binned samples would not fit the memory limit, and a recording without positions, exit 3
    with a message naming the problem.
Usage: test_decode_spatial.py POPCODE MPIEXEC. Exit 77 (skip) without numpy or h5py.
"""
import os
import shutil
import sys
import tempfile

try:
    import h5py
    import numpy as np
except ImportError as e:
    print(f"SKIP: {e} (install python3-numpy python3-h5py)")
    sys.exit(77)

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import decoder_jobs  # noqa: E402

POPCODE, MPIEXEC = sys.argv[1], sys.argv[2]
check = decoder_jobs.Checks()
STAGES = '["preprocess", "decode-spatial"]'
GRID = (16, 16, 4)


def write_job(tmp, name, recording, options, simulate="", stages=STAGES):
    return decoder_jobs.write_job(tmp, name, stages, recording, "decode-spatial", options, simulate)


def popcode(ranks, job, expect=0):
    return decoder_jobs.popcode(POPCODE, MPIEXEC, ranks, job, None, expect)


def results(tmp, name):
    with h5py.File(os.path.join(tmp, f"{name}.h5"), "r") as f:
        g = f["decode_spatial"]
        return {k: g[k][()] for k in ("accuracy", "balanced_accuracy", "predicted", "sample_class", "recall",
                                      "confusion", "neuron_cell")} | {"grid": tuple(g.attrs["grid"])}


def plant_spatial_code(rec):
    """Responses: baseline + unit noise + 0.4 for the neurons near the point of the image's class."""
    rng = np.random.default_rng(7)
    with h5py.File(rec, "r+") as f:
        ids = f["stimulus_id"][()]
        label = f["classes/label"][()]
        xyz = f["neurons/position"][()]
        centres = np.array([[250, 250], [750, 250], [250, 750], [750, 750]], dtype=float)
        near = np.linalg.norm(xyz[None, :, :2] - centres[:, None, :], axis=2) < 250  # classes x neurons
        resp = 1.5 + rng.standard_normal((len(ids), xyz.shape[0]))
        shown = ids >= 0
        resp[shown] += 0.4 * near[label[ids[shown]]]
        f["responses"][...] = resp.astype(np.float32)


def recount(r, rec):
    y, p = r["sample_class"], r["predicted"]
    conf = np.zeros((4, 4), dtype=np.int64)
    np.add.at(conf, (y, p), 1)
    recall = np.diag(conf) / conf.sum(1)
    check(np.array_equal(conf, r["confusion"]) and np.array_equal(recall, r["recall"]) and
          r["accuracy"] == np.mean(y == p) and r["balanced_accuracy"] == np.mean(recall),
          "confusion, recall, accuracy and balanced accuracy equal the NumPy recount")
    with h5py.File(rec, "r") as f:
        xyz, plane = f["neurons/position"][()], f["neurons/plane"][()]
    nx, ny, nz = r["grid"]
    lo, hi = xyz[:, :2].min(0), xyz[:, :2].max(0)
    col = np.minimum(nx - 1, np.floor((xyz[:, 0] - lo[0]) / (hi[0] - lo[0]) * nx)).astype(int)
    row = np.minimum(ny - 1, np.floor((xyz[:, 1] - lo[1]) / (hi[1] - lo[1]) * ny)).astype(int)
    check(np.array_equal(r["neuron_cell"], (plane * ny + row) * nx + col), "every neuron's cell equals the NumPy binning")


def main():
    with tempfile.TemporaryDirectory() as tmp:
        rec = os.path.join(tmp, "rec.h5")
        sim = "neurons = 1500\nimages = 600\nrepeats = 2\nclasses = 4\nplanes = 4\nspont_timepoints = 300\nseed = 3"
        popcode(2, write_job(tmp, "sim", rec, "", sim, '["simulate"]'))
        plant_spatial_code(rec)
        base = f'grid = "{GRID[0]},{GRID[1]},{GRID[2]}"\nchannels = "8,16,16"\nhidden = "32"\nfolds = 4\nepochs = 15'

        popcode(2, write_job(tmp, "cnn2d", rec, base))
        r2 = results(tmp, "cnn2d")
        print(f"cnn2d: accuracy {r2['accuracy']:.3f}, balanced {r2['balanced_accuracy']:.3f}")
        check(r2["balanced_accuracy"] >= 0.8, f"2D CNN decodes the planted spatial code (balanced {r2['balanced_accuracy']:.3f} >= 0.8)")
        recount(r2, rec)

        popcode(2, write_job(tmp, "cnn3d", rec, base + '\nmodel = "cnn3d"'))
        r3 = results(tmp, "cnn3d")
        print(f"cnn3d: accuracy {r3['accuracy']:.3f}, balanced {r3['balanced_accuracy']:.3f}")
        check(r3["balanced_accuracy"] >= 0.8, f"3D CNN decodes the planted spatial code (balanced {r3['balanced_accuracy']:.3f} >= 0.8)")

        popcode(2, write_job(tmp, "shuf", rec, base + "\nshuffle_labels = true"))
        sh = results(tmp, "shuf")
        print(f"shuffled labels: balanced {sh['balanced_accuracy']:.3f}")
        check(abs(sh["balanced_accuracy"] - 0.25) <= 0.08, f"shuffled labels decode at chance ({sh['balanced_accuracy']:.3f} within 0.25 +- 0.08)")

        plain = base + "\nbatchnorm = false\ndropout = 0.0"
        runs = {}
        for ranks in (1, 2, 3):
            popcode(ranks, write_job(tmp, f"plain{ranks}", rec, plain))
            runs[ranks] = results(tmp, f"plain{ranks}")
        print(f"cnn2d without batchnorm and dropout: balanced {runs[1]['balanced_accuracy']:.3f}")
        for ranks in (2, 3):
            same = np.mean(runs[ranks]["predicted"] == runs[1]["predicted"])
            check(same >= 0.98, f"predictions at {ranks} ranks equal 1 rank's ({100 * same:.1f}% >= 98%)")

        r = popcode(2, write_job(tmp, "huge", rec, base.replace(f'grid = "{GRID[0]},{GRID[1]},{GRID[2]}"', 'grid = "4000,4000,4"')), expect=3)
        check("4000 x 4000 x 4" in r.stderr and "max_memory_mb" in r.stderr, "a grid too fine for memory: exit 3 with the size and the limit")
        nopos = os.path.join(tmp, "nopos_rec.h5")
        shutil.copy(rec, nopos)
        with h5py.File(nopos, "r+") as f:
            del f["neurons/position"]
        r = popcode(2, write_job(tmp, "nopos", nopos, base), expect=3)
        check("/neurons/position" in r.stderr, "a recording without positions: exit 3 naming /neurons/position")
    check.finish("decode-spatial")


if __name__ == "__main__":
    main()
