"""End-to-end tests of `popcode import` and `popcode inspect`, run by ctest with Debian's /usr/bin/python3.

    test_import.py POPCODE MPIEXEC SOURCE_DIR {formats|hostile}

formats: makes miniature files in every format (make_import_fixtures.py), imports each at 1, 2 and 3 ranks
and checks that the recording holds exactly the source values (bitwise for float32 responses, NaN where the
source has NaN); checks `inspect` (text and JSON) on each; and that the imported recordings run through the
preprocess stage.
hostile: every file listed in tests/hostile/MANIFEST.tsv must make `popcode import` exit 3 with a message
containing the listed text, within the time limit, leaving neither the output nor its .partial file.
Exits 77 (ctest: skipped) when numpy, scipy or h5py are missing.
"""
import json
import os
import subprocess
import sys
import tempfile

try:
    import h5py
    import numpy as np
    import scipy.io  # noqa: F401
except ImportError as e:  # pragma: no cover
    print(f"SKIP: {e} (install python3-numpy python3-scipy python3-h5py)")
    sys.exit(77)

POPCODE, MPIEXEC, SRC, MODE = sys.argv[1:5]
ENV = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1", OPENBLAS_NUM_THREADS="1")
failures = []


def run(ranks, args, timeout=120):
    cmd = [MPIEXEC, "-n", str(ranks), "--oversubscribe", POPCODE] + args
    return subprocess.run(cmd, capture_output=True, text=True, env=ENV, timeout=timeout)


def check(cond, what):
    if not cond:
        failures.append(what)
        print("FAIL:", what)


def same(a, b):
    a, b = np.asarray(a), np.asarray(b)
    if a.shape != b.shape:
        return False
    if a.dtype.kind == "f" or b.dtype.kind == "f":
        return np.array_equal(a.astype(np.float64), b.astype(np.float64), equal_nan=True)
    return np.array_equal(a, b)


DATASETS = {"responses": "responses", "stimulus_id": "stimulus_id", "spontaneous": "spontaneous",
            "position": "neurons/position", "gad_positive": "neurons/gad_positive", "images": "images",
            "class_label": "classes/label", "orientation": "orientation", "presentation_time": "presentation_time",
            "image_source_id": "image_source_id", "presentation_tier": "presentation_tier"}


def formats():
    work = tempfile.mkdtemp(prefix="popcode-import-")
    subprocess.run(["/usr/bin/python3", os.path.join(SRC, "tests/importers/make_import_fixtures.py"), work], check=True)
    cases = json.load(open(os.path.join(work, "cases.json")))
    for case, spec in cases.items():
        args = [os.path.join(work, a) if i == 0 or spec["args"][i - 1] in ("--images", "--classes", "--stimulus") else a
                for i, a in enumerate(spec["args"])]
        expected_dir = os.path.join(work, case, "expected")
        expected = {f[:-4]: np.load(os.path.join(expected_dir, f)) for f in os.listdir(expected_dir)}
        for ranks in (1, 2, 3):
            out = os.path.join(work, f"{case}_np{ranks}.h5")
            r = run(ranks, ["import"] + args + ["--out", out])
            check(r.returncode == 0, f"{case} np{ranks}: exit {r.returncode}: {r.stderr[-2000:]}")
            if r.returncode != 0:
                continue
            with h5py.File(out, "r") as f:
                check(f.attrs["format"] in ("popcode-recording", b"popcode-recording"), f"{case}: format attribute")
                for key, arr in expected.items():
                    path = DATASETS[key]
                    check(path in f, f"{case} np{ranks}: /{path} missing")
                    if path in f:
                        got = f[path][...]
                        check(same(got, arr), f"{case} np{ranks}: /{path} differs: got {got.shape} {got.ravel()[:5]}, "
                                              f"expected {arr.shape} {arr.ravel()[:5]}")
                if "n_images" in spec:
                    check(int(f.attrs["n_images"]) == spec["n_images"], f"{case}: n_images {f.attrs['n_images']}")
                if "class_names" in spec:
                    names = [n.decode() if isinstance(n, bytes) else n for n in f["classes/names"][...]]
                    check(names == spec["class_names"], f"{case}: class names {names}")
        # inspect, text and JSON, agrees with the expected shapes.
        r = run(1, ["inspect"] + args[0:1] + args[1:] + ["--json"])
        check(r.returncode == 0, f"{case}: inspect --json exit {r.returncode}: {r.stderr[-1000:]}")
        if r.returncode == 0:
            info = json.loads(r.stdout)
            P, N = expected["responses"].shape
            check(info["presentations"] == P and info["neurons"] == N, f"{case}: inspect shape {info['presentations']} x {info['neurons']}")
            nans = int(np.isnan(expected["responses"]).sum())
            counted = [v["nan"] for v in info["variables"] if v["nan"] is not None]
            check(nans in counted or (nans == 0 and all(c == 0 for c in counted)), f"{case}: inspect NaN counts {counted}, expected {nans}")
        r = run(2, ["inspect"] + args)
        check(r.returncode == 0 and "popcode will import" in r.stdout, f"{case}: inspect text: {r.stdout[:300]} {r.stderr[-500:]}")
    # Imported recordings are real recordings: the preprocess stage accepts one with spontaneous activity.
    out = os.path.join(work, "mat5_np2.h5")
    res = os.path.join(work, "mat5_results.h5")
    r = run(2, ["preprocess", "--in", out, "--out", res, "--spont-pcs", "2"])
    check(r.returncode == 0, f"preprocess of an imported MAT recording: exit {r.returncode}: {r.stderr[-1500:]}")
    print(f"{len(cases)} formats x 3 rank counts checked")


def hostile():
    work = tempfile.mkdtemp(prefix="popcode-hostile-")
    manifest = os.path.join(SRC, "tests/hostile/MANIFEST.tsv")
    n = 0
    for line in open(manifest):
        if not line.strip() or line.startswith("#"):
            continue
        name, fmt, expect = line.rstrip("\n").split("\t")
        src = os.path.join(SRC, "tests/hostile", name)
        out = os.path.join(work, os.path.basename(name) + ".h5")
        try:
            r = run(1, ["import", src, "--out", out, "--format", fmt], timeout=60)
        except subprocess.TimeoutExpired:
            check(False, f"{name}: import hung (> 60 s)")
            continue
        n += 1
        check(r.returncode == 3, f"{name}: exit {r.returncode} (expected 3): {r.stderr[-800:]}")
        check(expect in r.stderr, f"{name}: message lacks '{expect}': {r.stderr[-800:]}")
        check(not os.path.exists(out) and not os.path.exists(out + ".partial"), f"{name}: left output behind")
    print(f"{n} hostile files checked")
    check(n >= 30, f"only {n} hostile files in the manifest")


{"formats": formats, "hostile": hostile}[MODE]()
if failures:
    print(f"{len(failures)} failures")
    sys.exit(1)
print("all passed")
