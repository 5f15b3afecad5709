"""Miniature source files in every format `popcode import` reads, with the real variable names, nesting and
dtypes (SCIENCE.md, "Data the users have"), plus the values the imported recording must hold.

    /usr/bin/python3 make_import_fixtures.py OUTDIR

writes OUTDIR/<case>/... and OUTDIR/cases.json: for each case the command-line arguments of `popcode import`
and the expected datasets (responses as presentations x neurons float32, stimulus_id, ...) saved as .npy
next to it. Values are deterministic (seeded) and in general position: random float32 responses, NaNs in
one case, odd sizes so neuron blocks at 2 and 3 ranks are uneven.
"""
import json
import os
import sys

import numpy as np

OUT = sys.argv[1]
os.makedirs(OUT, exist_ok=True)
rng = np.random.default_rng(20261122)
cases = {}


def save_expected(case, **arrays):
    d = os.path.join(OUT, case, "expected")
    os.makedirs(d, exist_ok=True)
    for k, v in arrays.items():
        np.save(os.path.join(d, k + ".npy"), v)


def add(case, args, **expected):
    cases[case] = {"args": args}
    save_expected(case, **expected)


# ---------------------------------------------------------------- Stringer MAT v5 (scipy.io.savemat)
import scipy.io as sio  # noqa: E402

P, N, T, K = 23, 11, 17, 6          # presentations, neurons, spontaneous time points, images
istim = rng.integers(1, K + 2, size=P).astype(np.float64)   # K + 1 = gray screen
istim[:K + 1] = np.arange(1, K + 2)                           # every id (and gray) at least once
resp = rng.standard_normal((P, N))
resp[3, 4] = np.nan
spont = rng.standard_normal((T, N))
med = rng.uniform(0, 500, size=(N, 3))
redcell = (rng.uniform(size=N) < 0.3).astype(np.float64)
stat = np.zeros((1, N), dtype=[("redcell", object), ("npix", object)])
for i in range(N):
    stat[0, i]["redcell"] = np.array([[redcell[i]]])
    stat[0, i]["npix"] = np.array([[100.0 + i]])
d = os.path.join(OUT, "mat5")
os.makedirs(d, exist_ok=True)
sio.savemat(os.path.join(d, "natimg2800_M000000_MP000_2017-01-01.mat"),
            {"stim": {"resp": resp, "istim": istim.reshape(-1, 1), "spont": spont}, "med": med, "stat": stat,
             "db": {"mouse_name": "M000000"}},
            do_compression=True, format="5")
imgs = rng.integers(0, 256, size=(5, 7, K + 1)).astype(np.uint8)   # height x width x images (one spare)
sio.savemat(os.path.join(d, "images_natimg2800_all.mat"), {"imgs": imgs}, do_compression=True)
names = np.empty((1, 4), dtype=object)
for i, nm in enumerate(["unknown", "birds", "cats", "other man made"]):
    names[0, i] = np.array([nm])
labels = rng.integers(0, 4, size=(1, K)).astype(np.uint8)
sio.savemat(os.path.join(d, "stimuli_class_assignment.mat"), {"class_assignment": labels, "class_names": names})
ids = np.where(istim == K + 1, -1, istim - 1).astype(np.int32)
add("mat5", ["mat5/natimg2800_M000000_MP000_2017-01-01.mat", "--images", "mat5/images_natimg2800_all.mat",
             "--classes", "mat5/stimuli_class_assignment.mat"],
    responses=resp.astype(np.float32), stimulus_id=ids, spontaneous=spont.astype(np.float32),
    position=med, gad_positive=redcell.astype(np.uint8),
    images=np.transpose(imgs[:, :, :K], (2, 0, 1)).astype(np.float32), class_label=labels.ravel().astype(np.int32))
cases["mat5"]["n_images"] = K
cases["mat5"]["class_names"] = ["unknown", "birds", "cats", "other man made"]

# ---------------------------------------------------------------- MAT v7.3 (HDF5 with the MATLAB user block)
import h5py  # noqa: E402

d = os.path.join(OUT, "mat73")
os.makedirs(d, exist_ok=True)
path = os.path.join(d, "ori32_M000001_MP001_2017-02-02.mat")
P2, N2, T2, K2 = 19, 13, 9, 4
istim2 = np.concatenate([np.arange(1, K2 + 2), rng.integers(1, K2 + 2, size=P2 - K2 - 1)]).astype(np.float64)
resp2 = rng.standard_normal((P2, N2))
spont2 = rng.standard_normal((T2, N2))
ori2 = rng.uniform(0, 360, size=P2)
with h5py.File(path, "w", userblock_size=512) as f:
    g = f.create_group("stim")
    g.attrs["MATLAB_class"] = np.bytes_("struct")
    # MATLAB lists a struct's fields in MATLAB_fields (variable-length arrays of single characters).
    fields = ["resp", "spont", "istim", "ori"]
    g.attrs.create("MATLAB_fields", [np.array(list(n), dtype="S1") for n in fields],
                   dtype=h5py.vlen_dtype(np.dtype("S1")))
    # MATLAB writes arrays column-major: HDF5 sees the transpose.
    for name, arr in [("resp", resp2), ("spont", spont2), ("istim", istim2.reshape(-1, 1)), ("ori", ori2.reshape(-1, 1))]:
        ds = g.create_dataset(name, data=arr.T)
        ds.attrs["MATLAB_class"] = np.bytes_("double")
    ds = f.create_dataset("med", data=rng.uniform(0, 100, size=(N2, 3)).T)
    ds.attrs["MATLAB_class"] = np.bytes_("double")
    med2 = ds[...].T
header = b"MATLAB 7.3 MAT-file, Platform: GLNXA64, Created on: Mon Nov 23 10:00:00 2026 HDF5 schema 1.00 ."
header = header.ljust(116, b" ") + b"\x00" * 8 + b"\x00\x02" + b"IM"
with open(path, "r+b") as fh:
    fh.write(header.ljust(512, b"\x00"))
ids2 = np.where(istim2 == K2 + 1, -1, istim2 - 1).astype(np.int32)
add("mat73", ["mat73/ori32_M000001_MP001_2017-02-02.mat"], responses=resp2.astype(np.float32), stimulus_id=ids2,
    spontaneous=spont2.astype(np.float32), orientation=np.deg2rad(ori2), position=med2)

# ---------------------------------------------------------------- plain .npy (several dtypes and orders)
d = os.path.join(OUT, "npy")
os.makedirs(d, exist_ok=True)
P3, N3 = 29, 7
r3 = rng.standard_normal((P3, N3)).astype(np.float32)
stim3 = rng.integers(100, 105, size=P3).astype(np.int64)
np.save(os.path.join(d, "resp_c.npy"), r3)
np.save(os.path.join(d, "resp_f.npy"), np.asfortranarray(r3))
np.save(os.path.join(d, "resp_be.npy"), r3.astype(">f8"))
np.save(os.path.join(d, "resp_t_i2.npy"), (r3.T * 100).astype("<i2"))          # neurons x presentations
np.save(os.path.join(d, "stim.npy"), stim3)
dense = np.searchsorted(np.unique(stim3), stim3).astype(np.int32)
add("npy_c", ["npy/resp_c.npy", "--stimulus", "npy/stim.npy"], responses=r3, stimulus_id=dense)
add("npy_fortran", ["npy/resp_f.npy", "--stimulus", "npy/stim.npy"], responses=r3, stimulus_id=dense)
add("npy_bigendian_f8", ["npy/resp_be.npy", "--stimulus", "npy/stim.npy"], responses=r3, stimulus_id=dense)
add("npy_transposed_i2", ["npy/resp_t_i2.npy", "--neurons-axis", "0"],
    responses=(r3.T * 100).astype("<i2").T.astype(np.float32), stimulus_id=np.arange(P3, dtype=np.int32))

# ---------------------------------------------------------------- .npz (Neuromatch W3D4 names), stored and deflated
d = os.path.join(OUT, "npz")
os.makedirs(d, exist_ok=True)
P4, N4 = 36, 9   # 36 ten-degree bins
r4 = rng.standard_normal((P4, N4)).astype(np.float32)
deg = np.arange(P4, dtype=np.float64) * 10
np.savez(os.path.join(d, "W3D4_stringer_oribinned1.npz"), resp=r4, stimuli=deg)
np.savez_compressed(os.path.join(d, "W3D4_stringer_oribinned1_compressed.npz"), resp=r4, stimuli=deg)
for case, name in [("npz_stored", "W3D4_stringer_oribinned1.npz"), ("npz_deflated", "W3D4_stringer_oribinned1_compressed.npz")]:
    add(case, ["npz/" + name], responses=r4, stimulus_id=np.arange(P4, dtype=np.int32), orientation=np.deg2rad(deg))

# ---------------------------------------------------------------- pickled dict .npy (Neuromatch stringer_orientations)
d = os.path.join(OUT, "pickle")
os.makedirs(d, exist_ok=True)
N5, P5 = 12, 21
sresp = rng.standard_normal((N5, P5)).astype(np.float32)
istim5 = rng.uniform(0, 2 * np.pi, size=P5)
xyz = rng.uniform(0, 300, size=(3, N5))
np.save(os.path.join(d, "stringer_orientations.npy"),
        {"sresp": sresp, "istim": istim5, "xyz": xyz, "run": rng.standard_normal(P5), "u_spont": rng.standard_normal((N5, 4)),
         "mean_spont": rng.standard_normal(N5)})
add("pickle_orientations", ["pickle/stringer_orientations.npy"], responses=sresp.T.copy(),
    stimulus_id=np.arange(P5, dtype=np.int32), orientation=istim5, position=xyz.T.copy())
sp = rng.standard_normal((N5, 15)).astype(np.float32)
np.save(os.path.join(d, "stringer_spontaneous.npy"),
        {"sresp": sp, "run": rng.standard_normal(15), "pupilArea": rng.standard_normal(15), "xyz": xyz})
add("pickle_spontaneous", ["pickle/stringer_spontaneous.npy"], responses=sp.T.copy(),
    stimulus_id=np.full(15, -1, dtype=np.int32), position=xyz.T.copy())

# ---------------------------------------------------------------- Sensorium / Lurz folder
root = os.path.join(OUT, "sensorium", "static26872-17-20-GrayImageNet-94c6ff995dac583098847cfecd43e7b6")
for sub in ["data/responses", "data/images", "data/behavior", "data/pupil_center", "meta/trials", "meta/neurons"]:
    os.makedirs(os.path.join(root, sub), exist_ok=True)
N6, H6, W6 = 10, 4, 6
train_ids = np.arange(1000, 1012)
test_ids = np.array([5, 6, 7])
frame = np.concatenate([train_ids, np.repeat(test_ids, 4), [2000, 2001]])
tiers = np.array(["train"] * 12 + ["test"] * 12 + ["validation"] * 2)
order = rng.permutation(len(frame))
frame, tiers = frame[order], tiers[order]
T6 = len(frame)
r6 = rng.standard_normal((T6, N6)).astype(np.float32)
img_of = {int(k): rng.integers(0, 256, size=(1, H6, W6)).astype(np.float32) for k in np.unique(frame)}
for t in range(T6):
    np.save(os.path.join(root, "data/responses", f"{t}.npy"), r6[t])
    np.save(os.path.join(root, "data/images", f"{t}.npy"), img_of[int(frame[t])])
    np.save(os.path.join(root, "data/behavior", f"{t}.npy"), rng.standard_normal(3).astype(np.float32))
    np.save(os.path.join(root, "data/pupil_center", f"{t}.npy"), rng.standard_normal(2).astype(np.float32))
np.save(os.path.join(root, "meta/trials/frame_image_id.npy"), frame.astype(np.int64))
np.save(os.path.join(root, "meta/trials/tiers.npy"), tiers)
np.save(os.path.join(root, "meta/trials/trial_idx.npy"), np.arange(T6))
coords = rng.integers(-500, 500, size=(N6, 3)).astype(np.float64)
np.save(os.path.join(root, "meta/neurons/cell_motor_coordinates.npy"), coords)
np.save(os.path.join(root, "meta/neurons/unit_ids.npy"), np.arange(1, N6 + 1))
distinct = np.unique(frame)
add("sensorium", ["sensorium/" + os.path.basename(root)], responses=r6,
    stimulus_id=np.searchsorted(distinct, frame).astype(np.int32), position=coords,
    images=np.stack([img_of[int(k)][0] for k in distinct]), image_source_id=distinct.astype(np.float64),
    presentation_tier=np.array([["train", "validation", "test", "final_test"].index(t) for t in tiers], dtype=np.int32))

# ---------------------------------------------------------------- NWB 2.x two-photon
d = os.path.join(OUT, "nwb")
os.makedirs(d, exist_ok=True)
path = os.path.join(d, "sub-01_ses-01_ophys.nwb")
S7, R7, H7, W7 = 200, 8, 6, 5
rate = 10.0
trace = rng.standard_normal((S7, R7)).astype(np.float32)
starts = np.arange(0.35, 18.0, 0.9)[:18]
stops = starts + 0.6
img_index = rng.integers(0, 5, size=len(starts))
masks = np.zeros((R7, H7, W7), dtype=np.float32)
for r in range(R7):
    masks[r, r % H7, (2 * r) % W7] = 1.0
    masks[r, (r + 1) % H7, (2 * r + 1) % W7] = 3.0


def vlen(f, obj, name, value):
    obj.attrs.create(name, value, dtype=h5py.string_dtype())


with h5py.File(path, "w") as f:
    vlen(f, f, "nwb_version", "2.6.0")
    vlen(f, f, "neurodata_type", "NWBFile")
    oph = f.create_group("processing/ophys")
    vlen(f, oph, "neurodata_type", "ProcessingModule")
    fl = oph.create_group("Fluorescence")
    vlen(f, fl, "neurodata_type", "Fluorescence")
    rs = fl.create_group("RoiResponseSeries")
    vlen(f, rs, "neurodata_type", "RoiResponseSeries")
    ds = rs.create_dataset("data", data=trace, chunks=(50, 4))
    vlen(f, ds, "unit", "dF/F")
    st = rs.create_dataset("starting_time", data=0.05)
    st.attrs["rate"] = rate
    seg = oph.create_group("ImageSegmentation")
    vlen(f, seg, "neurodata_type", "ImageSegmentation")
    ps = seg.create_group("PlaneSegmentation")
    vlen(f, ps, "neurodata_type", "PlaneSegmentation")
    ps.create_dataset("image_mask", data=masks)
    tab = f.create_group("intervals/presentations")
    vlen(f, tab, "neurodata_type", "TimeIntervals")
    tab.create_dataset("start_time", data=starts)
    tab.create_dataset("stop_time", data=stops)
    tab.create_dataset("image_index", data=img_index)
    tab.create_dataset("id", data=np.arange(len(starts)))
times = 0.05 + np.arange(S7) / rate
expected = np.zeros((len(starts), R7), dtype=np.float32)
for p, (a, b) in enumerate(zip(starts, stops)):
    s0, s1 = np.searchsorted(times, a, "left"), np.searchsorted(times, b, "left")
    acc = np.zeros(R7)
    for s in range(s0, s1):
        acc += trace[s].astype(np.float64)
    expected[p] = (acc / (s1 - s0)).astype(np.float32)
yy, xx = np.meshgrid(np.arange(H7), np.arange(W7), indexing="ij")
cent = np.zeros((R7, 3))
for r in range(R7):
    w = masks[r].astype(np.float64)
    cent[r, 0] = (w * xx).sum() / w.sum()
    cent[r, 1] = (w * yy).sum() / w.sum()
uniq = np.unique(img_index)
add("nwb", ["nwb/sub-01_ses-01_ophys.nwb"], responses=expected,
    stimulus_id=np.searchsorted(uniq, img_index).astype(np.int32), position=cent, presentation_time=starts,
    image_source_id=uniq.astype(np.float64))

with open(os.path.join(OUT, "cases.json"), "w") as fh:
    json.dump(cases, fh, indent=1)
print(f"wrote {len(cases)} import cases to {OUT}")
