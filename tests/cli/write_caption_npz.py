#!/usr/bin/env python3
"""A caption .npz in the format of DreamClear's tools/extract_t5_features.py
(caption_feature float32 [1, L, C], attention_mask int64 [1, L]), written with
the standard library only (the CLI tests run without numpy).

    write_caption_npz.py OUT.npz L C VALUE MASK...   # every feature VALUE; the mask's L values
    FEATURE_DESCR=<i4 write_caption_npz.py ...       # features of another dtype (i4, i8 or f8)
"""
import os
import struct
import sys
import zipfile


def npy(descr, shape, data):
    header = "{'descr': '%s', 'fortran_order': False, 'shape': %s, }" % (descr, str(tuple(shape)))
    header += " " * (63 - (10 + len(header)) % 64) + "\n"  # the data starts at a multiple of 64
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header.encode() + data


def main():
    out, tokens, channels, value = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
    mask = [int(m) for m in sys.argv[5:]]
    if len(mask) != tokens:
        sys.exit("write_caption_npz: give L mask values")
    n = tokens * channels
    with zipfile.ZipFile(out, "w") as z:
        descr = os.environ.get("FEATURE_DESCR", "<f4")
        code = {"<f4": "f", "<f8": "d", "<i4": "i", "<i8": "q"}[descr]
        item = int(value) if code in "iq" else value
        z.writestr("caption_feature.npy", npy(descr, (1, tokens, channels), struct.pack("<%d%s" % (n, code), *([item] * n))))
        z.writestr("attention_mask.npy", npy("<i8", (1, tokens), struct.pack("<%dq" % tokens, *mask)))


if __name__ == "__main__":
    main()
