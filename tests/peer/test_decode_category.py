#!/usr/bin/python3
"""The decode-category stage end to end, run by ctest as decode_category.

On a simulated recording whose 4 image classes are visible in the pixels (src/sim/images.hpp):
  - the linear decoder gives the same predictions at 1, 2 and 3 ranks (>= 98% identical; gradients are
    summed in a different order) and decodes far above chance (balanced accuracy >= 0.4, chance 0.25);
  - the MLP with batchnorm and dropout decodes far above chance too;
  - with labels shuffled over images it decodes at chance: folds group the two repeats of an image, so a
    decoder cannot pass a training image's label to its test repeat (this fails if folds split repeats);
  - accuracy, balanced accuracy, recall and the confusion matrix equal a NumPy recount of the stored
    predictions; folds are stratified and hold both repeats of each image;
  - a run stopped after some steps (POPCODE_TRAIN_STOP_AFTER_STEPS) and one stopped by SIGTERM resume from
    their checkpoints and end bit for bit equal to an uninterrupted run;
  - with normalize = "gray" (each neuron scaled by its gray-screen responses instead of the folds'
    z-scores) it still decodes far above chance, with another loss curve;
  - a recording without classes, a label out of range, a class with no images, and gray-screen normalisation
    of a recording without gray screens exit 3 with a message naming the problem.
Usage: test_decode_category.py POPCODE MPIEXEC. Exit 77 (skip) without numpy or h5py.
"""
import os
import shutil
import signal
import subprocess
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


def write_job(tmp, name, stages, recording, options, simulate=""):
    return decoder_jobs.write_job(tmp, name, stages, recording, "decode-category", options, simulate)


def popcode(ranks, job, env=None, expect=0):
    return decoder_jobs.popcode(POPCODE, MPIEXEC, ranks, job, env, expect)


def results(tmp, name):
    with h5py.File(os.path.join(tmp, f"{name}.h5"), "r") as f:
        g = f["decode_category"]
        return {k: g[k][()] for k in ("accuracy", "balanced_accuracy", "predicted", "sample_class", "recall",
                                      "confusion", "image_fold", "chance_balanced_accuracy")} | {
            "loss": g["curves/train_loss"][()], "classes": list(g.attrs["class_names"])}


def children(pid):
    """Process ids whose parent is `pid` (from /proc)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                after_name = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(after_name[1]) == pid:
            found.append(int(entry))
    return found


def recount(r):
    y, p = r["sample_class"], r["predicted"]
    k = len(r["classes"])
    conf = np.zeros((k, k), dtype=np.int64)
    np.add.at(conf, (y, p), 1)
    recall = np.diag(conf) / conf.sum(1)
    check(np.array_equal(conf, r["confusion"]), "confusion matrix equals the recount")
    check(np.array_equal(recall, r["recall"]), "recall equals the recount")
    check(r["accuracy"] == np.mean(y == p), "accuracy equals the recount")
    check(r["balanced_accuracy"] == np.mean(recall), "balanced accuracy equals the recount")


def main():
    with tempfile.TemporaryDirectory() as tmp:
        rec = os.path.join(tmp, "rec.h5")
        sim = "neurons = 1500\nimages = 800\nrepeats = 2\nclasses = 4\nseed = 3"
        popcode(2, write_job(tmp, "sim", '["simulate"]', rec, "", sim))
        stages = '["preprocess", "decode-category"]'
        linear = 'model = "linear"\nepochs = 25\nfolds = 4\ncheckpoints = true'

        runs = {}
        for ranks in (1, 2, 3):
            popcode(ranks, write_job(tmp, f"lin{ranks}", stages, rec, linear))
            runs[ranks] = results(tmp, f"lin{ranks}")
        r1 = runs[1]
        print(f"linear: accuracy {r1['accuracy']:.3f}, balanced {r1['balanced_accuracy']:.3f} (chance {r1['chance_balanced_accuracy']:.3f})")
        check(r1["balanced_accuracy"] >= 0.4, f"linear decoder far above chance (balanced {r1['balanced_accuracy']:.3f} >= 0.4)")
        for ranks in (2, 3):
            same = np.mean(runs[ranks]["predicted"] == r1["predicted"])
            check(same >= 0.98, f"linear predictions at {ranks} ranks equal 1 rank's ({100 * same:.1f}% >= 98%)")
        recount(r1)
        s = len(r1["image_fold"])
        y = r1["sample_class"]
        check(np.array_equal(y[:s], y[s:]), "both repeats of an image carry its class")
        for c in range(len(r1["classes"])):
            per_fold = np.bincount(r1["image_fold"][y[:s] == c], minlength=4)
            check(per_fold.max() - per_fold.min() <= 1, f"class {c} is spread evenly over the folds {per_fold.tolist()}")

        mlp = 'epochs = 25\nfolds = 4\nhidden = "256,64"'
        popcode(2, write_job(tmp, "mlp", stages, rec, mlp))
        m = results(tmp, "mlp")
        print(f"mlp: accuracy {m['accuracy']:.3f}, balanced {m['balanced_accuracy']:.3f}")
        check(m["balanced_accuracy"] >= 0.4, f"mlp decoder far above chance (balanced {m['balanced_accuracy']:.3f} >= 0.4)")

        popcode(2, write_job(tmp, "shuf", stages, rec, "epochs = 25\nfolds = 4\nhidden = \"256,64\"\nshuffle_labels = true"))
        sh = results(tmp, "shuf")
        print(f"shuffled labels: balanced {sh['balanced_accuracy']:.3f}")
        check(abs(sh["balanced_accuracy"] - 0.25) <= 0.07, f"shuffled labels decode at chance ({sh['balanced_accuracy']:.3f} within 0.25 +- 0.07)")

        # Gray-screen normalisation instead of the folds' z-scores: still far above chance, and really other inputs.
        popcode(2, write_job(tmp, "gray", stages, rec, linear + '\nnormalize = "gray"'))
        g = results(tmp, "gray")
        print(f"linear, gray-screen normalisation: balanced {g['balanced_accuracy']:.3f}")
        check(g["balanced_accuracy"] >= 0.4, f"gray-screen normalised decoder far above chance (balanced {g['balanced_accuracy']:.3f} >= 0.4)")
        check(not np.array_equal(g["loss"], runs[2]["loss"], equal_nan=True), "gray-screen normalisation changes the training (other loss curve)")

        # Resume after a stop with a checkpoint, against the uninterrupted 2-rank run.
        job = write_job(tmp, "stop", stages, rec, linear)
        r = popcode(2, job, dict(ENV, POPCODE_TRAIN_STOP_AFTER_STEPS="23"), expect=3)
        check("POPCODE_TRAIN_STOP_AFTER_STEPS" in r.stderr + r.stdout, "the stopped run says why it stopped")
        check(os.path.exists(os.path.join(tmp, "stop.h5.ckpt", "decode-category-fold0.pt")), "the stopped run left a checkpoint")
        r = popcode(2, job)
        check("resumed from" in r.stdout + r.stderr, "the rerun resumed from the checkpoint")
        st = results(tmp, "stop")
        check(np.array_equal(st["predicted"], runs[2]["predicted"]) and np.array_equal(st["loss"], runs[2]["loss"], equal_nan=True),
              "stopped and resumed run equals the uninterrupted one bit for bit")
        check(not os.path.exists(os.path.join(tmp, "stop.h5.ckpt")), "checkpoints are removed once the stage completes")

        # SIGTERM in the middle of training, on the MLP with dropout and batchnorm, against the uninterrupted
        # MLP run. It goes to the ranks themselves, as scancel's SIGTERM reaches every task of a Slurm step:
        # sent to mpirun (Open MPI 4.1 here) it reached the ranks about a second later, by when this small
        # job could be over.
        job = write_job(tmp, "term", stages, rec, mlp)
        proc = subprocess.Popen([MPIEXEC, "-n", "2", "--oversubscribe", POPCODE, "run", job], env=ENV,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        seen, ranks = "", []
        for line in proc.stdout:
            seen += line
            if "fold 1/4: epoch" in line:
                ranks = children(proc.pid)
                for pid in ranks:
                    os.kill(pid, signal.SIGTERM)
                break
        check(len(ranks) == 2, f"both ranks found to signal ({len(ranks)})")
        seen += proc.communicate(timeout=300)[0]
        check(proc.returncode != 0, f"SIGTERM stops the job (exit {proc.returncode})")
        # Where the signal lands is a race: inside a fold the trainer stops at the next agreed step and writes
        # a checkpoint; after a fold's last check the process dies of it once that fold's finished
        # checkpoint is written. Either way a checkpoint must be left and the rerun must resume.
        at_step, after_fold = "stopped at step" in seen, "terminated by a signal" in seen
        check(at_step or after_fold, "the signal stopped training " +
              ("at an agreed step" if at_step else "after a fold's finished checkpoint" if after_fold else "(it did not)"))
        if not (at_step or after_fold):
            print("the interrupted run's output ends:\n" + seen[-3000:])
        ckpt = os.path.join(tmp, "term.h5.ckpt")
        check(os.path.isdir(ckpt) and any(n.endswith(".pt") for n in os.listdir(ckpt)), "SIGTERM left a checkpoint")
        r = popcode(2, job)
        te = results(tmp, "term")
        check("resumed from" in r.stdout + r.stderr, "the rerun after SIGTERM resumed")
        check(np.array_equal(te["predicted"], m["predicted"]) and np.array_equal(te["loss"], m["loss"], equal_nan=True),
              "SIGTERM-interrupted and resumed run equals the uninterrupted one bit for bit")

        # Bad inputs.
        bare = os.path.join(tmp, "bare.h5")
        with h5py.File(rec, "r") as src, h5py.File(bare, "w") as dst:
            for k, v in src.attrs.items():
                dst.attrs[k] = v
            for k in ("responses", "stimulus_id"):
                dst[k] = src[k][()]
        r = popcode(2, write_job(tmp, "nolabels", stages, bare, linear), expect=3)
        check("/classes/label" in r.stderr, "a recording without classes: exit 3 naming /classes/label")
        wrong = os.path.join(tmp, "wronglabel.h5")
        shutil.copy(rec, wrong)
        with h5py.File(wrong, "r+") as f:
            f["classes/label"][5] = 7  # 4 class names
        r = popcode(2, write_job(tmp, "outofrange", stages, wrong, linear), expect=3)
        check("/classes/label" in r.stderr and "outside" in r.stderr, "a label out of range: exit 3 naming /classes/label")
        nogray = os.path.join(tmp, "nogray_rec.h5")
        popcode(1, write_job(tmp, "simng", '["simulate"]', nogray, "", "neurons = 200\nimages = 40\nrepeats = 2\nclasses = 4\ngray_fraction = 0\nseed = 1"))
        r = popcode(2, write_job(tmp, "nogray", stages, nogray, linear + '\nnormalize = "gray"'), expect=3)
        check("gray-screen presentations" in r.stderr, "gray-screen normalisation without gray screens: exit 3 saying so")
        rec16 = os.path.join(tmp, "rec16.h5")
        popcode(1, write_job(tmp, "sim16", '["simulate"]', rec16, "", "neurons = 200\nimages = 12\nrepeats = 2\nclasses = 16\nseed = 1"))
        r = popcode(2, write_job(tmp, "empty", stages, rec16, linear.replace("folds = 4", "folds = 2")), expect=3)
        check("has no images" in r.stderr, "a class with no images: exit 3 naming the class")
    check.finish("decode-category")


if __name__ == "__main__":
    main()
