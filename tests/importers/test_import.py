"""End-to-end tests of `popcode import` and `popcode inspect`, run by ctest with Debian's /usr/bin/python3.

    test_import.py POPCODE MPIEXEC SOURCE_DIR {formats|hostile|real_classes}

formats: makes miniature files in every format (make_import_fixtures.py), imports each at 1, 2 and 3 ranks
and checks that the recording holds exactly the source values (bitwise for float32 responses, NaN where the
source has NaN); that every dataset and attribute name of each imported recording is named in docs/format.md
(read as tests/e2e/test_commands.cpp reads the results guide); checks `inspect` (text and JSON) on each; and
that the imported recordings run through the preprocess stage.
hostile: every file listed in tests/hostile/MANIFEST.tsv must make `popcode import` exit 3 with a message
containing the listed text, within the time limit, leaving neither the output nor its .partial file.
real_classes: the real class files of Stringer et al. 2019 (stimuli_class_assignment.mat, 16 names, and
stimuli_class_assignment_confident.mat, 12 names; 2,800 labels each) imported beside a natimg2800-shaped MAT
source, from $POPCODE_SHARED_DATA/stringer2019 or else ../shared/data/stringer2019 beside the repository;
skipped with a message when they are absent.
Exits 77 (ctest: skipped) when numpy, scipy or h5py are missing.
"""
import json
import os
import re
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
    # One rank runs as an MPI singleton (no mpiexec): half the start-up time, which dominates the hostile corpus.
    cmd = ([MPIEXEC, "-n", str(ranks), "--oversubscribe"] if ranks > 1 else []) + [POPCODE] + args
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


def documented_names(markdown):
    """The guide's backticked names as patterns: `{a,b}` either, `*` any run within one component, `<k>` any
    component; a leading / is dropped. The same reading as documented_names in tests/e2e/test_commands.cpp."""
    out = []
    for token in re.findall(r"`([^`]*)`", markdown):
        token = token[1:] if token.startswith("/") else token
        if not token or token.count("{") != token.count("}"):
            continue
        pattern, i, depth = "", 0, 0
        while i < len(token):
            c = token[i]
            if c == "{":
                pattern, depth = pattern + "(", depth + 1
            elif c == "}":
                pattern, depth = pattern + ")", depth - 1
            elif c == "," and depth > 0:
                pattern += "|"
            elif c == "*":
                pattern += "[^/]*"
            elif c == "<" and ">" in token[i:]:
                i = token.index(">", i)
                pattern += "[^/]+"
            else:
                pattern += re.escape(c)
            i += 1
        out.append(re.compile(pattern))
    return out


def undocumented(path, names):
    """Names in the file at `path` (datasets by their last 1-4 path components, attributes other than
    `description` by name) that match none of the guide's names, and the number of datasets looked at."""
    def known(name):
        parts = name.strip("/").split("/")
        return any(p.fullmatch("/".join(parts[-n:])) for n in range(1, min(4, len(parts)) + 1) for p in names)
    missing, datasets = [], []
    with h5py.File(path, "r") as f:
        objects = [("/", f)]
        f.visititems(lambda name, obj: objects.append((name, obj)))
        for name, obj in objects:
            if isinstance(obj, h5py.Dataset):
                datasets.append(name)
                if not known(name):
                    missing.append(f"dataset /{name}")
            missing += [f"attribute {a} of /{name.strip('/')}" for a in obj.attrs if a != "description" and not known(a)]
    return missing, len(datasets)


def formats():
    guide = documented_names(open(os.path.join(SRC, "docs/format.md")).read())
    check(len(guide) > 20, f"docs/format.md: only {len(guide)} backticked names")
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
            if ranks == 1:  # what an h5py user finds in the file is in the format guide
                missing, n_datasets = undocumented(out, guide)
                check(n_datasets >= 2, f"{case}: only {n_datasets} datasets in the imported recording")
                check(not missing, f"{case}: not in docs/format.md: {', '.join(missing)}")
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


def real_classes():
    folder = os.path.join(os.environ.get("POPCODE_SHARED_DATA", os.path.join(SRC, "..", "shared", "data")), "stringer2019")
    files = {"stimuli_class_assignment.mat": 16, "stimuli_class_assignment_confident.mat": 12}
    missing = [f for f in files if not os.path.exists(os.path.join(folder, f))]
    if missing:
        print(f"SKIP: {', '.join(missing)} not found in {folder} (set POPCODE_SHARED_DATA to the shared data folder)")
        sys.exit(77)
    work = tempfile.mkdtemp(prefix="popcode-classes-")
    # A natimg2800-shaped session: each of the 2,800 images once, then a gray screen (id 2801 = max).
    K, N = 2800, 5
    rng = np.random.default_rng(5)
    istim = np.concatenate([rng.permutation(K) + 1, [K + 1]]).astype(np.float64)
    resp = rng.standard_normal((K + 1, N))
    src = os.path.join(work, "natimg2800_M000000_2017-01-01.mat")
    scipy.io.savemat(src, {"stim": {"resp": resp, "istim": istim.reshape(-1, 1), "spont": rng.standard_normal((20, N))}},
                     do_compression=True)
    for name, n_names in files.items():
        ref = scipy.io.loadmat(os.path.join(folder, name))
        labels = ref["class_assignment"].ravel().astype(np.int64)
        names = [str(np.asarray(x).ravel()[0]) for x in ref["class_names"].ravel()]
        check(len(names) == n_names and labels.size == K, f"{name}: the reference itself has {len(names)} names, {labels.size} labels")
        for ranks in (1, 2):
            out = os.path.join(work, f"{name}_np{ranks}.h5")
            r = run(ranks, ["import", src, "--classes", os.path.join(folder, name), "--out", out])
            check(r.returncode == 0, f"{name} np{ranks}: exit {r.returncode}: {r.stderr[-1500:]}")
            if r.returncode != 0:
                continue
            with h5py.File(out, "r") as f:
                got_names = [n.decode() if isinstance(n, bytes) else n for n in f["classes/names"][...]]
                got_labels = f["classes/label"][...]
                check(got_names == names, f"{name} np{ranks}: names {got_names}, expected {names}")
                check(got_labels.shape == (K,) and np.array_equal(got_labels, labels),
                      f"{name} np{ranks}: labels differ ({got_labels.shape}, first {got_labels[:8]} vs {labels[:8]})")
                check(int(f.attrs["n_images"]) == K, f"{name} np{ranks}: n_images {f.attrs['n_images']}")
                check(np.array_equal(f["stimulus_id"][...], np.where(istim == K + 1, -1, istim - 1).astype(np.int32)),
                      f"{name} np{ranks}: stimulus ids differ")
        print(f"{name}: {len(names)} names, {labels.size} labels imported")


{"formats": formats, "hostile": hostile, "real_classes": real_classes}[MODE]()
if failures:
    print(f"{len(failures)} failures")
    sys.exit(1)
print("all passed")
