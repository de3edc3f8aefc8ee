#!/usr/bin/env python3
"""NIQE golden values from BasicSR's own code (the reference implementation).

Usage: make_niqe_golden.py BASICSR_CHECKOUT NIQE_PARAMS.npz IMAGE... > golden.json
       make_niqe_golden.py --crop IN.png OUT.png Y0 X0 H W   (fixture preparation)

Image paths are written as given: run it from the repository root with
repository-relative paths (the test reads them from there).

BasicSR is not installed: this script copies the few pure-Python files NIQE
needs (basicsr/metrics/niqe.py, metric_util.py, basicsr/utils/color_util.py,
matlab_functions.py) into a temporary package with stub __init__ files, so
only numpy, scipy and torch are required (Debian: python3-numpy python3-scipy
python3-torch). The pristine parameters are passed explicitly (BasicSR reads
them next to niqe.py; they live in ../shared/data, never in this repository).
The images are decoded from PNG by the stdlib zlib.

The value depends on the BLAS under torch: imresize runs torch.mv (sgemv) in
float32, and on blurred or JPEG images flat areas make the MSCN values there
pure rounding noise of that resize, so NIQE moves by up to ~1e-3 between BLAS
kernels (OpenBLAS Haswell/SkylakeX/Cooperlake agree; Sandybridge and Prescott
differ). The output records the environment; the committed values come from
Debian 12 python3-torch 1.13.1 + OpenBLAS 0.3.21 (AVX2/AVX-512 kernel), BasicSR
at commit 8d56e3a.

Fixtures in tests/fixtures/metrics/niqe/ (rass-degrade of examples/images,
seed 0, --png-level 9), made with:
  rass-degrade examples/images/chelsea.png -o chelsea_blur3.png -p blur --severity 3 --png-level 9
  rass-degrade examples/images/coffee.png -o c.png -p jpeg --severity 3 --png-level 9
  make_niqe_golden.py --crop c.png coffee_jpeg3_crop.png 0 192 288 384
  rass-degrade examples/images/astronaut.png -o a.png -p jpeg --severity 3 --png-level 9
  make_niqe_golden.py --crop a.png astronaut_jpeg3_crop.png 0 224 288 288
"""
import json
import os
import shutil
import struct
import sys
import tempfile
import types
import zlib

import numpy as np


def read_png_rgb(path):
    """Minimal 8-bit RGB/gray non-interlaced PNG decoder (all five filters)."""
    data = open(path, "rb").read()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, w = 8, b"", None
    while pos < len(data):
        n, tag = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + n]
        if tag == b"IHDR":
            w, h, depth, ctype, _, _, interlace = struct.unpack(">IIBBBBB", body)
            assert depth == 8 and interlace == 0 and ctype in (0, 2)
            ch = 3 if ctype == 2 else 1
        elif tag == b"IDAT":
            idat += body
        pos += 12 + n
    raw = zlib.decompress(idat)
    stride = w * ch
    out = np.zeros((h, stride), np.int64)
    prev = np.zeros(stride, np.int64)
    for y in range(h):
        f = raw[y * (stride + 1)]
        line = np.frombuffer(raw, np.uint8, stride, y * (stride + 1) + 1).astype(np.int64)
        cur = np.zeros(stride, np.int64)
        for x in range(stride):
            a = cur[x - ch] if x >= ch else 0
            b = prev[x]
            c = prev[x - ch] if x >= ch else 0
            if f == 0: p = 0
            elif f == 1: p = a
            elif f == 2: p = b
            elif f == 3: p = (a + b) // 2
            else:
                pa, pb, pc = abs(b - c), abs(a - c), abs(a + b - 2 * c)
                p = a if pa <= pb and pa <= pc else (b if pb <= pc else c)
            cur[x] = (line[x] + p) & 255
        out[y] = cur
        prev = cur
    return out.reshape(h, w, ch).astype(np.uint8)


def load_basicsr_niqe(root):
    tmp = tempfile.mkdtemp()
    pkg = os.path.join(tmp, "basicsr")
    for sub in ("", "metrics", "utils"):
        os.makedirs(os.path.join(pkg, sub), exist_ok=True)
    open(os.path.join(pkg, "__init__.py"), "w").close()
    open(os.path.join(pkg, "metrics", "__init__.py"), "w").close()
    with open(os.path.join(pkg, "utils", "__init__.py"), "w") as f:
        f.write("from .color_util import bgr2ycbcr\n")
    with open(os.path.join(pkg, "utils", "registry.py"), "w") as f:
        f.write("class _R:\n    def register(self, *a, **k):\n        return lambda f: f\nMETRIC_REGISTRY = _R()\n")
    for rel in ("metrics/niqe.py", "metrics/metric_util.py", "utils/color_util.py", "utils/matlab_functions.py"):
        shutil.copy(os.path.join(root, "basicsr", rel), os.path.join(pkg, rel))
    sys.modules.setdefault("cv2", types.ModuleType("cv2"))  # only used for 'gray' conversion
    sys.path.insert(0, tmp)
    from basicsr.metrics import niqe
    return niqe


def write_png_rgb(path, a):
    h, w, _ = a.shape
    raw = b"".join(b"\x00" + a[y].tobytes() for y in range(h))

    def chunk(tag, body):
        return struct.pack(">I", len(body)) + tag + body + struct.pack(">I", zlib.crc32(tag + body) & 0xFFFFFFFF)

    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)) +
                chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b""))


def environment():
    import platform
    import scipy
    import torch
    env = {"python": platform.python_version(), "numpy": np.__version__, "scipy": scipy.__version__,
           "torch": torch.__version__, "machine": platform.machine()}
    try:  # OpenBLAS names the kernel it picked (torch.mv -> sgemv)
        import ctypes
        lib = ctypes.CDLL("libblas.so.3")
        lib.openblas_get_corename.restype = ctypes.c_char_p
        env["openblas_core"] = lib.openblas_get_corename().decode()
        lib.openblas_get_config.restype = ctypes.c_char_p
        env["openblas_config"] = lib.openblas_get_config().decode()
    except (OSError, AttributeError):
        pass
    return env


def main():
    if sys.argv[1] == "--crop":
        src, dst, y0, x0, h, w = sys.argv[2], sys.argv[3], *map(int, sys.argv[4:8])
        write_png_rgb(dst, np.ascontiguousarray(read_png_rgb(src)[y0:y0 + h, x0:x0 + w]))
        return
    root, params_path, images = sys.argv[1], sys.argv[2], sys.argv[3:]
    niqe = load_basicsr_niqe(root)
    p = np.load(params_path)
    out = []
    for path in images:
        rgb = read_png_rgb(path)
        bgr = rgb[..., ::-1] if rgb.shape[2] == 3 else rgb
        img = bgr.astype(np.float32)
        img = niqe.reorder_image(img, input_order="HWC")
        img = np.squeeze(niqe.to_y_channel(img)).round()
        value = niqe.niqe(img, p["mu_pris_param"], p["cov_pris_param"], p["gaussian_window"])
        out.append({"image": path, "niqe": value})
    print(json.dumps({"reference": "BasicSR basicsr/metrics/niqe.py (niqe on the rounded Y)",
                      "environment": environment(), "values": out}, indent=1))


main()
