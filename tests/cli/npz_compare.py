#!/usr/bin/env python3
"""Compares one array of two .npz files with the standard library only (CI's
python3 has no numpy): zipfile checks each entry's CRC, the .npy header is
read as numpy writes it (a Python dict literal), the data as array('f'/'d'/'q').

    npz_compare.py A.npz B.npz KEY TOLERANCE

Exit 0 when both hold KEY with the same shape and dtype and every value is
within TOLERANCE; 1 otherwise, saying why on stderr. The largest difference
is printed on stdout."""
import array
import ast
import sys
import zipfile

CODES = {"<f4": "f", "<f8": "d", "<i8": "q", "|u1": "B"}


def load(path, key):
    with zipfile.ZipFile(path) as z:
        bad = z.testzip()
        if bad:
            sys.exit(f"{path}: entry {bad} fails its CRC")
        raw = z.read(key + ".npy")
    if raw[:6] != b"\x93NUMPY":
        sys.exit(f"{path}: {key}.npy is not an .npy")
    major = raw[6]
    hlen = int.from_bytes(raw[8:10] if major == 1 else raw[8:12], "little")
    start = (10 if major == 1 else 12) + hlen
    header = ast.literal_eval(raw[10 if major == 1 else 12:start].decode("latin1"))
    if header["fortran_order"]:
        sys.exit(f"{path}: {key} is in Fortran order")
    a = array.array(CODES[header["descr"]])
    a.frombytes(raw[start:])
    return header["descr"], tuple(header["shape"]), a


def main():
    a_path, b_path, key, tol = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])
    da, sa, a = load(a_path, key)
    db, sb, b = load(b_path, key)
    if (da, sa) != (db, sb):
        sys.exit(f"{key}: {da} {sa} against {db} {sb}")
    worst = max((abs(x - y) for x, y in zip(a, b)), default=0.0)
    print(worst)
    if not worst <= tol:
        sys.exit(f"{key}: largest difference {worst} over {tol}")


if __name__ == "__main__":
    main()
