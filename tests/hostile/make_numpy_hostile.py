#!/usr/bin/env python3
"""Writes the NumPy part of the hostile-input corpus (tests/hostile/npy_* and npz_*) and its MANIFEST.tsv lines.

Run:  /usr/bin/python3 tests/hostile/make_numpy_hostile.py
Every file is built from literal bytes or from deterministic numpy/zipfile output (pinned zip timestamps), so
reruns give identical files. Pickles are written as raw opcodes: nothing here unpickles anything, and the
"forbidden global" file only names os.system, it never calls it.

MANIFEST.tsv lines are <file> TAB <format> TAB <substring the error message must contain>. This script rewrites
only its own block, from the line starting with '# numpy' up to (not including) the next comment line, and
keeps every other line as it is; put other formats' lines under their own '# ...' heading.
"""
import io
import os
import struct
import zipfile

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
DATE = (2020, 1, 1, 0, 0, 0)


def npy_bytes(header_dict_text, data=b'', version=(1, 0)):
    """A .npy stream with the given header text (padded like numpy does) and data."""
    prefix_len = 10 if version[0] == 1 else 12
    text = header_dict_text
    while (prefix_len + len(text) + 1) % 64:
        text += ' '
    text += '\n'
    head = b'\x93NUMPY' + bytes(version)
    head += struct.pack('<H' if version[0] == 1 else '<I', len(text))
    return head + text.encode('latin1') + data


def npy_of(array, allow_pickle=False):
    buf = io.BytesIO()
    np.save(buf, array, allow_pickle=allow_pickle)
    return buf.getvalue()


OBJECT_HEADER = "{'descr': '|O', 'fortran_order': False, 'shape': (), }"


def zip_bytes(members, compression=zipfile.ZIP_STORED):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, 'w') as z:
        for name, data in members:
            info = zipfile.ZipInfo(name, date_time=DATE)
            info.compress_type = compression
            z.writestr(info, data)
    return buf.getvalue()


def resp_npy():
    return npy_of((np.arange(15, dtype=np.float32) * 0.25).reshape(5, 3))


def stored_npz():
    return zip_bytes([('resp.npy', resp_npy()), ('stimuli.npy', npy_of(np.arange(5, dtype=np.float64)))])


def crc_error_npz():
    z = bytearray(stored_npz())
    npy = resp_npy()
    at = bytes(z).find(npy)
    assert at > 0
    z[at + len(npy) - 5] ^= 0x40  # a data byte of 'resp', not its header
    return bytes(z)


def bomb_npz():
    # A deflated member whose local header and central directory both claim 0xF0000000 uncompressed bytes,
    # far beyond what its ~100 compressed bytes can inflate to.
    z = bytearray(zip_bytes([('resp.npy', resp_npy())], zipfile.ZIP_DEFLATED))
    real = len(resp_npy())
    local = bytes(z).find(b'PK\x03\x04')
    central = bytes(z).find(b'PK\x01\x02')
    assert struct.unpack_from('<I', z, local + 22)[0] == real
    assert struct.unpack_from('<I', z, central + 24)[0] == real
    struct.pack_into('<I', z, local + 22, 0xF0000000)
    struct.pack_into('<I', z, central + 24, 0xF0000000)
    return bytes(z)


def truncated_cd_npz():
    z = stored_npz()
    central = z.find(b'PK\x01\x02')
    return z[:central + 30]  # cut inside the first central-directory entry; no end record follows


def pickle_npy(pickle_bytes):
    return npy_bytes(OBJECT_HEADER) + pickle_bytes


def trunc_frame_npy():
    # A genuine protocol-4 dict pickle cut in half: its FRAME announces more bytes than remain.
    import pickle
    body = pickle.dumps(np.array({'a': np.arange(40.0)}, dtype=object), protocol=4)
    assert body[2] == 0x95  # FRAME right after PROTO
    return pickle_npy(body[:len(body) // 2])


def list_in_object_array():
    a = np.empty((), dtype=object)
    a[()] = [1, 2]
    return npy_of(a, allow_pickle=True)


# (file, format, expected substring, bytes)
CASES = [
    ('npy_empty.npy', 'npy', 'file is empty', b''),
    ('npy_bad_magic.npy', 'npy', 'NUMPY magic', b'\x93NUMPX' + npy_bytes(
        "{'descr': '<f8', 'fortran_order': False, 'shape': (1,), }", b'\0' * 8)[6:]),
    ('npy_version9.npy', 'npy', 'format version 9.0', npy_bytes(
        "{'descr': '<f8', 'fortran_order': False, 'shape': (1,), }", b'\0' * 8, version=(9, 0))),
    ('npy_trunc_magic.npy', 'npy', 'truncated inside the \\x93NUMPY magic', b'\x93NUM'),
    ('npy_trunc_header.npy', 'npy', 'truncated inside the header', npy_bytes(
        "{'descr': '<f8', 'fortran_order': False, 'shape': (4,), }")[:40]),
    ('npy_trunc_data.npy', 'npy', 'needs 96 data bytes but the file holds 40 (truncated?)', npy_of(
        np.arange(12, dtype=np.float64).reshape(3, 4))[:128 + 40]),
    ('npy_header_len_beyond.npy', 'npy', 'header of 60000 bytes but only', b'\x93NUMPY\x01\x00' + struct.pack(
        '<H', 60000) + b"{'descr': '<f8', 'fortran_order': False, 'shape': (1,), }\n"),
    ('npy_negative_dim.npy', 'npy', 'negative dimension', npy_bytes(
        "{'descr': '<f8', 'fortran_order': False, 'shape': (-3, 4), }")),
    ('npy_absurd_shape.npy', 'npy', 'needs 8000000000000000000 data bytes', npy_bytes(
        "{'descr': '<f8', 'fortran_order': False, 'shape': (1000000000000, 1000000), }", b'\0' * 64)),
    ('npy_overflow_shape.npy', 'npy', 'more than 2^63 bytes', npy_bytes(
        "{'descr': '<f8', 'fortran_order': False, 'shape': (10000000000000, 10000000), }", b'\0' * 64)),
    ('npy_complex.npy', 'npy', "dtype '<c16' (complex) is not supported", npy_bytes(
        "{'descr': '<c16', 'fortran_order': False, 'shape': (1,), }", b'\0' * 16)),
    ('npy_float16.npy', 'npy', "dtype '<f2' (float16) is not supported", npy_bytes(
        "{'descr': '<f2', 'fortran_order': False, 'shape': (2,), }", b'\0' * 4)),
    ('npy_structured.npy', 'npy', 'structured dtype', npy_bytes(
        "{'descr': [('a', '<f4'), ('b', '<i4')], 'fortran_order': False, 'shape': (1,), }", b'\0' * 8)),
    ('npy_unterminated_header.npy', 'npy', 'header dict is not terminated', npy_bytes(
        "{'descr': '<f8', 'fortran_order': False, 'shape': (1,), ", b'\0' * 8)),
    ('npy_fortran_maybe.npy', 'npy', "fortran_order is 'maybe'", npy_bytes(
        "{'descr': '<f8', 'fortran_order': 'maybe', 'shape': (1,), }", b'\0' * 8)),
    ('npy_object_not_dict.npy', 'npy', 'object array of shape (2,)', npy_of(
        np.array([1, 'a'], dtype=object), allow_pickle=True)),
    ('npy_pickle_list.npy', 'npy', 'holds a list of 2 items, not a dict', list_in_object_array()),
    ('npy_pickle_nested_dict.npy', 'npy', "key 'meta': holds a dict", npy_of(
        {'resp': np.zeros(2), 'meta': {'rate': 30}}, allow_pickle=True)),
    ('npy_pickle_os_system.npy', 'npy', 'forbidden global os.system', pickle_npy(
        b'\x80\x03cos\nsystem\nq\x00X\x04\x00\x00\x00echoq\x01\x85q\x02Rq\x03.')),
    ('npy_pickle_trunc_frame.npy', 'npy', 'bytes remain (truncated?)', trunc_frame_npy()),
    ('npy_pickle_binget_unset.npy', 'npy', 'memo slot 5 was never set', pickle_npy(b'\x80\x03}q\x00h\x05.')),
    ('npy_pickle_no_stop.npy', 'npy', 'without a STOP opcode', pickle_npy(b'\x80\x03}q\x00')),
    # A memoized 5-tuple handed to numpy.dtype; a long run of such calls used to copy the tuple each time.
    ('npy_pickle_many_args.npy', 'npy', 'call of the global numpy.dtype with 5 arguments', pickle_npy(
        b'\x80\x03cnumpy\ndtype\nq\x00(K\x01K\x02K\x03K\x04K\x05tq\x01h\x00h\x01R.')),
    ('npz_not_zip.npz', 'npz', 'not a readable zip archive', b'This is not a zip archive, just text.\n' * 4),
    ('npz_truncated_cd.npz', 'npz', 'not a readable zip archive', truncated_cd_npz()),
    ('npz_crc_error.npz', 'npz', 'CRC mismatch', crc_error_npz()),
    ('npz_member_not_npy.npz', 'npz', "member 'resp.npy': not a .npy file", zip_bytes(
        [('resp.npy', b'hello, I am not an array\n')])),
    ('npz_lying_shape.npz', 'npz', "member 'resp.npy': shape (3, 4) of <f4 needs 48 data bytes but the member "
     'holds 20', zip_bytes([('resp.npy', npy_bytes(
         "{'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), }", b'\0' * 20))])),
    ('npz_empty.npz', 'npz', 'holds no members', zip_bytes([])),
    ('npz_bomb.npz', 'npz', 'more than deflate can produce', bomb_npz()),
    ('npz_bzip2.npz', 'npz', 'compression method 12 is not supported', zip_bytes(
        [('resp.npy', resp_npy())], zipfile.ZIP_BZIP2)),
]


def write_manifest():
    path = os.path.join(HERE, 'MANIFEST.tsv')
    lines = open(path).read().splitlines() if os.path.exists(path) else [
        '# Hostile inputs: <file> TAB <format> TAB <substring expected in the error message>.',
        '# Each block is owned by the script that writes it (see the block comment).',
    ]
    ours = ['# numpy (written by make_numpy_hostile.py; do not edit by hand)']
    ours += [f'{name}\t{fmt}\t{expect}' for name, fmt, expect, _ in CASES]
    out, skipping, replaced = [], False, False
    for line in lines:
        if line.startswith('# numpy'):
            skipping, replaced = True, True
            out.extend(ours)
            continue
        if skipping and line.startswith('#'):
            skipping = False
        if not skipping:
            out.append(line)
    if not replaced:
        out.extend(ours)
    with open(path, 'w') as f:
        f.write('\n'.join(out) + '\n')


def main():
    for name, _, _, data in CASES:
        with open(os.path.join(HERE, name), 'wb') as f:
            f.write(data)
    write_manifest()


if __name__ == '__main__':
    main()
