#!/usr/bin/env python3
"""Seams of a tiled rass-restore output, where OSEDiff's latent tiles meet
(scripts/bench-gpu.sh's seam rows).

    python3 scripts/seams.py TILED.png [UNTILED.png] [--tile 96] [--overlap 32]

With TILED alone: the mean step between neighbouring rows and columns at the
tile edges against the median step over the image (a seam: well above 1).
With UNTILED (one pass over the whole image) too: mean |tiled - untiled|
within 2 px of the tile edges against overall.
"""
import argparse

import numpy as np
from PIL import Image


def tile_edges(height, tile, overlap):
    """Inner latent tile edges in pixels (OSEDiff's grid over height / 8 latent rows, the last tile edge-aligned)."""
    h = height // 8
    n, cur = 1, tile
    while cur < h:
        cur = max(n * tile - overlap * n, 0) + tile
        n += 1
    starts = [h - tile if i == n - 1 else max(i * tile - overlap * i, 0) for i in range(n)]
    edges = sorted({8 * s for s in starts[1:]} | {8 * (s + tile) for s in starts[:-1]})
    return [e for e in edges if 0 < e < height]


def steps(a, edges):
    dr = np.abs(np.diff(a, axis=0)).mean(axis=(1, 2))  # dr[r]: between rows r and r + 1
    dc = np.abs(np.diff(a, axis=1)).mean(axis=(0, 2))
    median = (np.median(dr) + np.median(dc)) / 2
    if not edges:
        return "no inner tile edges at this size"
    at = np.mean([dr[e - 1] for e in edges] + [dc[e - 1] for e in edges])
    return ("mean step across the %d latent tile edges per axis %.2f levels against the median step %.2f "
            "(ratio %.2f; a seam: well above 1)" % (len(edges), at, median, at / max(median, 1e-9)))


def against_untiled(a, b, edges):
    d = np.abs(a - b).mean(-1)
    if not edges:
        return "no inner tile edges at this size (mean |tiled - untiled| %.2f levels)" % d.mean()
    band = np.zeros(d.shape[0], bool)
    for e in edges:
        band[max(e - 2, 0):e + 2] = True
    at = np.concatenate([d[band].ravel(), d[:, band].ravel()])
    return ("mean |tiled - untiled| %.2f levels overall, %.2f within 2 px of the %d tile edges per axis (ratio %.2f)"
            % (d.mean(), at.mean(), len(edges), at.mean() / max(d.mean(), 1e-9)))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("tiled")
    ap.add_argument("untiled", nargs="?")
    ap.add_argument("--tile", type=int, default=96, help="latent tile size (rass-restore --tile-size)")
    ap.add_argument("--overlap", type=int, default=32, help="latent tile overlap (--tile-overlap)")
    args = ap.parse_args()
    a = np.asarray(Image.open(args.tiled), dtype=np.float64)
    edges = tile_edges(a.shape[0], args.tile, args.overlap)
    if args.untiled is None:
        print(steps(a, edges))
    else:
        print(against_untiled(a, np.asarray(Image.open(args.untiled), dtype=np.float64), edges))


if __name__ == "__main__":
    main()
