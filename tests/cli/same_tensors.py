#!/usr/bin/env python3
"""same_tensors.py A.safetensors B.safetensors: exit 0 when both files hold
the same tensors (names, dtypes, shapes and bytes; metadata ignored), else 1.
The converter tests compare a converted folder with the committed one."""
import json
import struct
import sys


def tensors(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        h = json.loads(f.read(n))
        data = f.read()
    h.pop("__metadata__", None)
    return {k: (v["dtype"], v["shape"], data[v["data_offsets"][0]:v["data_offsets"][1]]) for k, v in h.items()}


sys.exit(0 if tensors(sys.argv[1]) == tensors(sys.argv[2]) else 1)
