#!/usr/bin/env python3
"""A copy of a safetensors file with extra float32 tensors of zeros appended:
NAME=D0xD1x... each. Standard library only (the CLI tests run without numpy).
A whole checkpoint's extra parts (a T5 decoder beside its encoder) in test form.

    add_tensors.py IN.safetensors OUT.safetensors NAME=2x3 [NAME=4 ...]
"""
import json
import struct
import sys


def main():
    src, dst, specs = sys.argv[1], sys.argv[2], sys.argv[3:]
    data = open(src, "rb").read()
    n = struct.unpack("<Q", data[:8])[0]
    header = json.loads(data[8:8 + n])
    body = bytearray(data[8 + n:])
    for spec in specs:
        name, dims = spec.split("=")
        shape = [int(d) for d in dims.split("x")]
        count = 1
        for d in shape:
            count *= d
        begin = len(body)
        body += b"\0" * (4 * count)
        header[name] = {"dtype": "F32", "shape": shape, "data_offsets": [begin, len(body)]}
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    with open(dst, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + bytes(body))


if __name__ == "__main__":
    main()
