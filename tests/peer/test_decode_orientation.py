#!/usr/bin/python3
"""The decode-orientation stage end to end, run by ctest as decode_orientation.

On the simulator's orientation experiment (stimulus = "gratings": 5,000 neurons with von Mises direction
tuning, default noise, shared spontaneous fluctuations leaking into the responses, 3,000 grating directions
shown once each):
  - the default decoder (an MLP with 200 hidden units, binned target) reaches a median error <= 2 degrees;
  - the linear decoder gives the same estimates at 1, 2 and 3 ranks (within 0.05 degrees) and a median
    error <= 2 degrees;
  - with the angles shuffled over stimuli it decodes at chance (median error near 90 degrees);
  - the stored per-sample errors, their median and mean equal a NumPy recount from the stored angles and
    estimates; gray screens are left out;
  - the (cos, sin) and raw-angle targets run and are reported (the raw angle suffers from the wrap-around);
  - with repeated stimuli, every presentation of a stimulus is in the same fold, and period_degrees = 180
    measures errors modulo 180;
  - a run stopped after some steps resumes from its checkpoint to the same result bit for bit;
  - a recording without /orientation and one with a NaN response exit 3 with a message naming the problem.
Usage: test_decode_orientation.py POPCODE MPIEXEC. Exit 77 (skip) without numpy or h5py.
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
from decoder_jobs import ENV  # noqa: E402

POPCODE, MPIEXEC = sys.argv[1], sys.argv[2]
check = decoder_jobs.Checks()
STAGES = '["decode-orientation"]'


def write_job(tmp, name, recording, options, simulate="", stages=STAGES):
    return decoder_jobs.write_job(tmp, name, stages, recording, "decode-orientation", options, simulate)


def popcode(ranks, job, env=None, expect=0):
    return decoder_jobs.popcode(POPCODE, MPIEXEC, ranks, job, env, expect)


def results(tmp, name):
    with h5py.File(os.path.join(tmp, f"{name}.h5"), "r") as f:
        g = f["decode_orientation"]
        out = {k: g[k][()] for k in ("median_error_degrees", "mean_error_degrees", "chance_median_error_degrees",
                                     "presentation", "angle", "predicted", "error_degrees", "fold")}
        out["loss"] = g["curves/train_loss"][()]
        out["period"] = float(g.attrs["period_degrees"])
        return out


def circular_error(a, b, period_deg):
    """|a - b| on the circle of angles (radians) with the given period, in degrees."""
    p = np.deg2rad(period_deg)
    d = np.mod(a - b, p)
    return np.rad2deg(np.minimum(d, p - d))


def recount(r, rec):
    err = circular_error(r["predicted"], r["angle"], r["period"])
    check(np.allclose(err, r["error_degrees"], rtol=0, atol=1e-9), "per-sample errors equal the NumPy recount")
    check(abs(np.median(err) - r["median_error_degrees"]) < 1e-9, "median error equals the recount")
    check(abs(np.mean(err) - r["mean_error_degrees"]) < 1e-9, "mean error equals the recount")
    with h5py.File(rec, "r") as f:
        ids, ori = f["stimulus_id"][()], f["orientation"][()]
    shown = np.flatnonzero(ids >= 0)
    check(np.array_equal(r["presentation"], shown), f"every stimulus presentation is a sample, gray screens left out ({len(shown)} of {len(ids)})")
    check(np.array_equal(r["angle"], ori[shown]), "sample angles are the recording's /orientation")


def main():
    with tempfile.TemporaryDirectory() as tmp:
        rec = os.path.join(tmp, "rec.h5")
        sim = 'stimulus = "gratings"\nneurons = 5000\nimages = 3000\nrepeats = 1\nspont_timepoints = 200\nseed = 5'
        popcode(2, write_job(tmp, "sim", rec, "", sim, '["simulate"]'))

        popcode(2, write_job(tmp, "mlp", rec, ""))
        m = results(tmp, "mlp")
        print(f"default (mlp 200, bins): median error {m['median_error_degrees']:.2f} deg, mean {m['mean_error_degrees']:.2f}")
        check(m["median_error_degrees"] <= 2.0, f"default decoder: median error {m['median_error_degrees']:.2f} <= 2 degrees at 5,000 neurons")
        check(m["chance_median_error_degrees"] == 90.0, "chance median error is 90 degrees for directions")
        recount(m, rec)

        linear = 'model = "linear"\ncheckpoints = true'
        runs = {}
        for ranks in (1, 2, 3):
            popcode(ranks, write_job(tmp, f"lin{ranks}", rec, linear))
            runs[ranks] = results(tmp, f"lin{ranks}")
        r1 = runs[1]
        print(f"linear (bins): median error {r1['median_error_degrees']:.2f} deg")
        check(r1["median_error_degrees"] <= 2.0, f"linear decoder: median error {r1['median_error_degrees']:.2f} <= 2 degrees")
        for ranks in (2, 3):
            diff = circular_error(runs[ranks]["predicted"], r1["predicted"], 360).max()
            check(diff <= 0.05, f"linear estimates at {ranks} ranks equal 1 rank's (largest difference {diff:.2e} deg <= 0.05)")

        popcode(2, write_job(tmp, "shuf", rec, linear + "\nshuffle_labels = true"))
        sh = results(tmp, "shuf")
        print(f"shuffled angles: median error {sh['median_error_degrees']:.1f} deg")
        check(sh["median_error_degrees"] >= 75, f"shuffled angles decode at chance (median {sh['median_error_degrees']:.1f} >= 75 degrees)")

        for target in ("cossin", "angle"):
            popcode(2, write_job(tmp, target, rec, f'model = "linear"\ntarget = "{target}"'))
            t = results(tmp, target)
            print(f"linear, target {target}: median error {t['median_error_degrees']:.2f} deg")
            check(t["median_error_degrees"] < 45, f"target {target} decodes above chance ({t['median_error_degrees']:.2f} < 45 degrees)")

        # Resume after a stop with a checkpoint, against the uninterrupted 2-rank linear run.
        job = write_job(tmp, "stop", rec, linear)
        r = popcode(2, job, dict(ENV, POPCODE_TRAIN_STOP_AFTER_STEPS="30"), expect=3)
        check(os.path.exists(os.path.join(tmp, "stop.h5.ckpt", "decode-orientation-fold0.pt")), "the stopped run left a checkpoint")
        r = popcode(2, job)
        check("resumed from" in r.stdout + r.stderr, "the rerun resumed from the checkpoint")
        st = results(tmp, "stop")
        check(np.array_equal(st["predicted"], runs[2]["predicted"]) and np.array_equal(st["loss"], runs[2]["loss"], equal_nan=True),
              "stopped and resumed run equals the uninterrupted one bit for bit")

        # Repeated stimuli share a fold; orientation errors modulo 180.
        rep = os.path.join(tmp, "rep.h5")
        popcode(1, write_job(tmp, "simrep", rep, "", 'stimulus = "gratings"\nneurons = 400\nimages = 150\nrepeats = 3\nspont_timepoints = 50\nseed = 2', '["simulate"]'))
        popcode(2, write_job(tmp, "reprun", rep, 'model = "linear"\nperiod_degrees = 180\nepochs = 10'))
        rr = results(tmp, "reprun")
        with h5py.File(rep, "r") as f:
            ids = f["stimulus_id"][()][rr["presentation"]]
        check(all(len(set(rr["fold"][ids == i])) == 1 for i in np.unique(ids)), "all presentations of a stimulus are in one fold")
        check(rr["error_degrees"].max() <= 90 and rr["chance_median_error_degrees"] == 45, "period 180: errors are at most 90 degrees, chance 45")
        recount(rr, rep)

        # Bad inputs.
        imgs = os.path.join(tmp, "imgs.h5")
        popcode(1, write_job(tmp, "simimg", imgs, "", "neurons = 100\nimages = 20\nrepeats = 2\nseed = 1", '["simulate"]'))
        r = popcode(2, write_job(tmp, "noori", imgs, linear), expect=3)
        check("/orientation" in r.stderr, "a recording without angles: exit 3 naming /orientation")
        nan = os.path.join(tmp, "nanrec.h5")
        shutil.copy(rep, nan)
        with h5py.File(nan, "r+") as f:
            f["responses"][3, 7] = np.nan
        r = popcode(2, write_job(tmp, "nan", nan, linear), expect=3)
        check("NaN" in r.stderr and "nanrec.h5" in r.stderr, "a NaN response: exit 3 naming the file and the NaN")
    check.finish("decode-orientation")


if __name__ == "__main__":
    main()
