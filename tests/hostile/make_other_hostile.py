"""Malformed MAT, Sensorium, NWB and unrecognised inputs for the hostile-input corpus (deterministic).

    cd tests/hostile && /usr/bin/python3 make_other_hostile.py

Writes the files below and prints their MANIFEST.tsv lines (file, --format, text the error must contain).
"""
import os
import shutil

import h5py
import numpy as np
import scipy.io as sio

HERE = os.path.dirname(os.path.abspath(__file__))
lines = []


def entry(name, fmt, expect):
    lines.append(f"{name}\t{fmt}\t{expect}")


def mat(name, variables, expect, compress=True):
    path = os.path.join(HERE, name)
    sio.savemat(path, variables, do_compression=compress)
    entry(name, "mat", expect)
    return path


good_stim = {"resp": np.arange(12.0).reshape(4, 3), "istim": np.array([[1.0], [2.0], [3.0], [3.0]])}
# A valid file, the basis of the truncated and corrupted ones.
base = os.path.join(HERE, "_base.mat")
sio.savemat(base, {"stim": dict(good_stim, spont=np.ones((5, 3)))}, do_compression=True)
raw = open(base, "rb").read()
os.remove(base)

mat("mat_no_stim.mat", {"resp": np.ones((3, 3))}, "no variable 'stim'")
mat("mat_stim_not_struct.mat", {"stim": np.ones((3, 3))}, "expected a struct")
mat("mat_no_resp.mat", {"stim": {"istim": np.ones((3, 1))}}, "stim has no field 'resp'")
mat("mat_istim_length.mat", {"stim": {"resp": np.ones((4, 3)), "istim": np.ones((5, 1))}}, "has 5 entries but")
mat("mat_istim_zero.mat", {"stim": {"resp": np.ones((3, 3)), "istim": np.array([[0.0], [1.0], [2.0]])}},
    "must be whole numbers >= 1")
mat("mat_resp_text.mat", {"stim": {"resp": "not numbers", "istim": np.ones((1, 1))}}, "expected a numeric presentations x neurons")
mat("mat_resp_empty.mat", {"stim": {"resp": np.zeros((0, 3)), "istim": np.zeros((0, 1))}}, "is empty")
mat("mat_spont_neurons.mat", {"stim": dict(good_stim, spont=np.ones((5, 2)))}, "expected time points x 3 neurons")
mat("mat_only_gray.mat", {"stim": {"resp": np.ones((2, 3)), "istim": np.array([[1.0], [1.0]])}}, "only gray-screen")

with open(os.path.join(HERE, "mat_header_only.mat"), "wb") as f:
    f.write(raw[:128])
entry("mat_header_only.mat", "mat", "no variable 'stim'")
with open(os.path.join(HERE, "mat_truncated_header.mat"), "wb") as f:
    f.write(raw[:70])
entry("mat_truncated_header.mat", "mat", "not a readable MAT file")
with open(os.path.join(HERE, "mat_truncated_data.mat"), "wb") as f:
    f.write(raw[: len(raw) * 2 // 3])
entry("mat_truncated_data.mat", "mat", "truncated or corrupt")
corrupt = bytearray(raw)
for i in range(150, min(len(corrupt), 190)):
    corrupt[i] ^= 0x5A
with open(os.path.join(HERE, "mat_corrupt_zlib.mat"), "wb") as f:
    f.write(bytes(corrupt))
entry("mat_corrupt_zlib.mat", "mat", "inflate returned data error")

# ------------------------------------------------------------------ Sensorium folders


def sensorium(name, trials=3, neurons=4, frame=True, tiers=None, bad=None):
    root = os.path.join(HERE, name)
    shutil.rmtree(root, ignore_errors=True)
    os.makedirs(os.path.join(root, "data/responses"))
    os.makedirs(os.path.join(root, "meta/trials"))
    for t in range(trials):
        np.save(os.path.join(root, "data/responses", f"{t}.npy"), np.arange(neurons, dtype=np.float32) + t)
    if frame:
        np.save(os.path.join(root, "meta/trials/frame_image_id.npy"), np.arange(trials))
    if tiers is not None:
        np.save(os.path.join(root, "meta/trials/tiers.npy"), np.array(tiers))
    if bad:
        bad(root)
    return root


sensorium("sensorium_no_frame_ids", frame=False)
entry("sensorium_no_frame_ids", "sensorium", "missing meta/trials/frame_image_id.npy")
sensorium("sensorium_trial_gap", bad=lambda r: os.rename(os.path.join(r, "data/responses/1.npy"),
                                                          os.path.join(r, "data/responses/7.npy")))
entry("sensorium_trial_gap", "sensorium", "trial 1 is missing")
sensorium("sensorium_tiers_short", tiers=["train", "test"])
entry("sensorium_tiers_short", "sensorium", "expected 3 tier names")
sensorium("sensorium_ragged_trial", bad=lambda r: np.save(os.path.join(r, "data/responses/2.npy"), np.ones(5, np.float32)))
entry("sensorium_ragged_trial", "sensorium", "expected 4 responses (one per neuron)")
sensorium("sensorium_bad_name", bad=lambda r: np.save(os.path.join(r, "data/responses/x1.npy"), np.ones(4, np.float32)))
entry("sensorium_bad_name", "sensorium", "is not named <trial number>.npy")
sensorium("sensorium_frame_float", bad=lambda r: np.save(os.path.join(r, "meta/trials/frame_image_id.npy"),
                                                          np.array([0.0, 1.5, 2.0])))
entry("sensorium_frame_float", "sensorium", "is not an integer")

# ------------------------------------------------------------------ NWB


def nwb(name, build, expect):
    path = os.path.join(HERE, name)
    with h5py.File(path, "w") as f:
        build(f)
    entry(name, "nwb", expect)
    return path


def attr(obj, k, v):
    obj.attrs.create(k, v, dtype=h5py.string_dtype())


def ophys(f, data=None, table=True, starts=(0.0, 1.0), stops=(0.5, 1.5)):
    attr(f, "nwb_version", "2.6.0")
    rs = f.create_group("processing/ophys/Fluorescence/RoiResponseSeries")
    attr(rs, "neurodata_type", "RoiResponseSeries")
    rs.create_dataset("data", data=np.ones((20, 3), np.float32) if data is None else data)
    st = rs.create_dataset("starting_time", data=0.0)
    st.attrs["rate"] = 10.0
    if table:
        t = f.create_group("intervals/presentations")
        t.create_dataset("start_time", data=np.array(starts))
        t.create_dataset("stop_time", data=np.array(stops))


nwb("nwb_no_version.nwb", lambda f: f.create_dataset("x", data=1), "not an NWB file")
nwb("nwb_no_ophys.nwb", lambda f: attr(f, "nwb_version", "2.6.0"), "no processing/ophys")
nwb("nwb_data_1d.nwb", lambda f: ophys(f, data=np.ones(20, np.float32)), "expected a non-empty numeric (time x ROIs) matrix")
nwb("nwb_window_outside.nwb", lambda f: ophys(f, starts=(0.0, 50.0), stops=(0.5, 51.0)), "holds no sample")
nwb("nwb_no_table.nwb", lambda f: ophys(f, table=False), "no presentation table")
path = nwb("nwb_truncated.nwb", lambda f: ophys(f), "truncated file")
data = open(path, "rb").read()
with open(path, "wb") as fh:
    fh.write(data[: len(data) // 2])

with open(os.path.join(HERE, "unknown_format.dat"), "wb") as f:
    f.write(bytes(range(256)) * 4)
entry("unknown_format.dat", "auto", "format not recognised")

print("# MAT, Sensorium, NWB and unrecognised files (make_other_hostile.py)")
print("\n".join(lines))
