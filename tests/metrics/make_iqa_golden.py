#!/usr/bin/env python3
"""PSNR/SSIM golden values from the formulas of REFERENCE.md section 5,
written directly in numpy/scipy (an oracle independent of the C++ code).

    /usr/bin/python3 tests/metrics/make_iqa_golden.py tests/fixtures/metrics

Writes pair_a.png, pair_b.png (a deterministic RGB pair, 96x80), gray_a.png,
gray_b.png (gray pair) and iqa_golden.json with, for each pair: psnr/ssim in
the BasicSR convention (RGB and Y, crop 0 and 4) and psnr/psnry/ssim/ssimc in
the pyiqa convention.
"""
import json
import os
import struct
import sys
import zlib

import numpy as np
from scipy.ndimage import correlate


def write_png(path, arr):
    h, w = arr.shape[:2]
    ch = 1 if arr.ndim == 2 else arr.shape[2]
    raw = b"".join(b"\x00" + arr[y].astype(np.uint8).tobytes() for y in range(h))

    def chunk(tag, data):
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", w, h, 8, 2 if ch == 3 else 0, 0, 0, 0)
    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


def window():
    g = np.exp(-((np.arange(11) - 5) ** 2) / (2 * 1.5 ** 2))
    g /= g.sum()
    return np.outer(g, g)


def ssim_plane(x, y, relu):
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    w = window()
    f = lambda a: correlate(a, w, mode="constant")[5:-5, 5:-5]  # valid region
    mu1, mu2 = f(x), f(y)
    s1, s2, s12 = f(x * x) - mu1 ** 2, f(y * y) - mu2 ** 2, f(x * y) - mu1 * mu2
    cs = (2 * s12 + c2) / (s1 + s2 + c2)
    if relu:
        cs = np.maximum(cs, 0)
    return float((((2 * mu1 * mu2 + c1) / (mu1 ** 2 + mu2 ** 2 + c1)) * cs).mean())


def y_basicsr(rgb):  # limited range, [0, 255] units
    r, g, b = (rgb[..., k].astype(np.float64) / 255 for k in range(3))
    return 16 + 65.481 * r + 128.553 * g + 24.966 * b


def y_yiq(rgb):  # full range, [0, 1]; float32 as pyiqa (torch default dtype), so round() ties agree
    r, g, b = (rgb[..., k].astype(np.float32) / np.float32(255) for k in range(3))
    return np.float32(0.299) * r + np.float32(0.587) * g + np.float32(0.114) * b


def planes(img):
    return [img.astype(np.float64)] if img.ndim == 2 else [img[..., k].astype(np.float64) for k in range(3)]


def basicsr(a, b, crop, y):
    if crop:
        a, b = a[crop:-crop, crop:-crop], b[crop:-crop, crop:-crop]
    if y and a.ndim == 3:
        pa, pb = [y_basicsr(a)], [y_basicsr(b)]
    else:
        pa, pb = planes(a), planes(b)
    mse = np.mean([(x - z) ** 2 for x, z in zip(pa, pb)])
    psnr = float("inf") if mse == 0 else 10 * np.log10(255 ** 2 / mse)
    return float(psnr), float(np.mean([ssim_plane(x, z, False) for x, z in zip(pa, pb)]))


def pyiqa(a, b):
    if a.ndim == 2:  # pyiqa loads gray images as RGB
        a, b = np.stack([a] * 3, -1), np.stack([b] * 3, -1)
    psnr = 10 * np.log10(1 / (np.mean((a / 255.0 - b / 255.0) ** 2) + 1e-8))
    ya, yb = y_yiq(a), y_yiq(b)
    psnry = 10 * np.log10(1 / (np.mean((ya.astype(np.float64) - yb.astype(np.float64)) ** 2) + 1e-8))
    ssim = ssim_plane(np.round(ya * np.float32(255)).astype(np.float64), np.round(yb * np.float32(255)).astype(np.float64), True)
    ssimc = float(np.mean([ssim_plane(x, z, True) for x, z in zip(planes(a), planes(b))]))
    return {"psnr": float(psnr), "psnry": float(psnry), "ssim": ssim, "ssimc": ssimc}


out_dir = sys.argv[1] if len(sys.argv) > 1 else "."
rng = np.random.default_rng(7)
yy, xx = np.mgrid[0:80, 0:96]
base = np.stack([(xx * 2 + yy) % 256, (yy * 3) % 256, (xx * yy // 7) % 256], -1).astype(np.float64)
a = np.clip(base, 0, 255).astype(np.uint8)
b = np.clip(base + rng.normal(0, 12, base.shape) + 5 * np.sin(xx / 5)[..., None], 0, 255).round().astype(np.uint8)
ga = a[..., 0]
gb = np.clip(ga + rng.normal(0, 20, ga.shape), 0, 255).round().astype(np.uint8)
golden = {}
for name, (x, z) in {"pair": (a, b), "gray": (ga, gb)}.items():
    write_png(os.path.join(out_dir, f"{name}_a.png"), x)
    write_png(os.path.join(out_dir, f"{name}_b.png"), z)
    entry = pyiqa(x, z)
    for crop in (0, 4):
        for y in (False, True):
            p, s = basicsr(x, z, crop, y)
            entry[f"psnr@basicsr/crop{crop}/y{int(y)}"] = p
            entry[f"ssim@basicsr/crop{crop}/y{int(y)}"] = s
    golden[name] = entry
json.dump(golden, open(os.path.join(out_dir, "iqa_golden.json"), "w"), indent=1)
