#!/usr/bin/env python3
"""A copy of a safetensors file whose tensor NAME (float32) has VALUE (nan,
inf, ...) as its first element: a damaged weight file of the right size.
Standard library only (the CLI tests run without numpy).

    poison_tensor.py IN.safetensors OUT.safetensors NAME VALUE
"""
import json
import struct
import sys


def main():
    src, dst, name, value = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])
    data = open(src, "rb").read()
    n = struct.unpack("<Q", data[:8])[0]
    header = json.loads(data[8:8 + n])
    if header[name]["dtype"] != "F32":
        sys.exit(f"poison_tensor: {name} is not F32")
    at = header[name]["data_offsets"][0] + 8 + n
    with open(dst, "wb") as f:
        f.write(data[:at] + struct.pack("<f", value) + data[at + 4:])


if __name__ == "__main__":
    main()
