#!/usr/bin/env python3
"""Golden latent-tile blend for tests/nn/test_restore.cpp.

OSEDiff_test.forward's stitching (osediff.py), written out here with numpy:
grid counts per axis by its while loops, the outer loop ("row") over the x
offsets and the inner one ("col") over the y offsets, the last tile of each
axis aligned to the edge, Gaussian weights of _gaussian_weights (float64,
x midpoint (T-1)/2, y midpoint T/2), and torch's in-place semantics of
`noise_pred[...] += pred * weights`: a float32 accumulator plus a float32
prediction times float64 weights, computed in float64 and rounded to float32
once per tile (the contributors likewise). The per-tile function is
fn(t) = 3 t + 1 in float32, exact on both sides, so the C++ blend must match
bit for bit.

Writes tests/fixtures/nn/latent_tiles_z.npy (the latent, float32
[1, 2, 13, 19]) and latent_tiles_out.npy (the blend, tile 8, overlap 4).
Run: python3 tests/nn/make_latent_tiles_fixture.py (needs numpy only).
"""
import math
import os

import numpy as np

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fixtures", "nn")


def gaussian_weights(t):
    var = 0.01
    mid = (t - 1) / 2
    xs = [math.exp(-(x - mid) * (x - mid) / (t * t) / (2 * var)) / math.sqrt(2 * math.pi * var) for x in range(t)]
    mid = t / 2
    ys = [math.exp(-(y - mid) * (y - mid) / (t * t) / (2 * var)) / math.sqrt(2 * math.pi * var) for y in range(t)]
    return np.outer(ys, xs)  # float64 [y, x]


def blend(z, tile, overlap, fn):
    _, _, h, w = z.shape
    t = min(tile, h, w)
    weights = gaussian_weights(t)
    rows = 0
    cur = 0
    while cur < w:
        cur = max(rows * t - overlap * rows, 0) + t
        rows += 1
    cols = 0
    cur = 0
    while cur < h:
        cur = max(cols * t - overlap * cols, 0) + t
        cols += 1
    acc = np.zeros(z.shape, np.float32)
    count = np.zeros(z.shape, np.float32)
    for row in range(rows):
        for col in range(cols):
            ofs_x = w - t if row == rows - 1 else max(row * t - overlap * row, 0)
            ofs_y = h - t if col == cols - 1 else max(col * t - overlap * col, 0)
            sl = (slice(None), slice(None), slice(ofs_y, ofs_y + t), slice(ofs_x, ofs_x + t))
            pred = fn(z[sl])
            acc[sl] = (acc[sl].astype(np.float64) + pred.astype(np.float64) * weights).astype(np.float32)
            count[sl] = (count[sl].astype(np.float64) + weights).astype(np.float32)
    return acc / count


def main():
    rng = np.random.default_rng(7)
    z = rng.standard_normal((1, 2, 13, 19)).astype(np.float32)
    out = blend(z, 8, 4, lambda t: (t * np.float32(3) + np.float32(1)).astype(np.float32))
    np.save(os.path.join(OUT, "latent_tiles_z.npy"), z)
    np.save(os.path.join(OUT, "latent_tiles_out.npy"), out.astype(np.float32))


if __name__ == "__main__":
    main()
