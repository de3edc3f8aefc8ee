#!/usr/bin/env python3
"""Golden values for rass's torch-free parts of SAM's automatic mask generator
(lib/rass/core/sam_crops, lib/rass/core/mask_regions), computed by the
reference itself: segment-anything 1.0's utils/amg.py (Apache-2.0) and
OpenCV 4.6's connectedComponentsWithStats, which its remove_small_regions
calls.

    /tmp/samvenv/bin/pip install --no-deps segment-anything==1.0 opencv-python-headless==4.6.0.66
    /tmp/samvenv/bin/python tests/core/make_sam_amg_fixture.py

Writes tests/fixtures/core/sam_amg.json:
  crops:   generate_crop_boxes for image sizes, layer counts and overlaps
  grids:   build_all_layer_point_grids (points per layer and their values)
  near:    is_box_near_crop_edge for boxes around crop and image sides
  regions: random masks (rows of 0/1) with remove_small_regions' result and
           "changed" for holes and islands at several areas; cv2's labels of
           each mask (8-connectivity), whose numbering decides ties
"""
import json
import os

import cv2
import numpy as np
import torch
from segment_anything.utils.amg import (build_all_layer_point_grids, generate_crop_boxes, is_box_near_crop_edge,
                                        remove_small_regions)

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(os.path.dirname(HERE), "fixtures", "core", "sam_amg.json")


def rows(m):
    return ["".join("1" if v else "0" for v in r) for r in m]


def main():
    r = np.random.default_rng(3)
    crops = []
    for w, h, n, ov in [(1500, 1000, 1, 512 / 1500), (640, 480, 2, 512 / 1500), (333, 517, 3, 0.25),
                        (7, 5, 2, 512 / 1500), (2, 9, 1, 0.5), (160, 120, 1, 0.0), (1024, 1024, 3, 0.9)]:
        boxes, layers = generate_crop_boxes((h, w), n, ov)
        crops.append({"width": w, "height": h, "layers": n, "overlap": ov, "boxes": boxes, "layer": layers})
    grids = []
    for n, layers, f in [(32, 0, 1), (32, 2, 2), (7, 2, 2), (5, 1, 3), (1, 0, 1), (3, 2, 1)]:
        g = build_all_layer_point_grids(n, layers, f)
        grids.append({"points_per_side": n, "layers": layers, "downscale": f, "points": [a.tolist() for a in g]})
    near = []
    for crop, w, h in [([0, 0, 201, 161], 320, 240), ([120, 80, 320, 240], 320, 240), ([0, 0, 320, 240], 320, 240),
                       ([40, 30, 90, 70], 130, 100)]:
        cw, ch = crop[2] - crop[0], crop[3] - crop[1]
        for _ in range(40):
            x0, y0 = int(r.integers(0, cw)), int(r.integers(0, ch))
            b = [x0, y0, int(r.integers(x0, cw)), int(r.integers(y0, ch))]
            got = is_box_near_crop_edge(torch.tensor([b]), crop, [0, 0, w, h])
            near.append({"box": b, "crop": crop, "width": w, "height": h, "near": bool(got[0])})
    regions = []
    for i in range(24):
        h, w = int(r.integers(1, 30)), int(r.integers(1, 40))
        p = [0.15, 0.4, 0.6, 0.85][i % 4]
        m = r.random((h, w)) < p
        if i % 3 == 0:  # blobs as well as speckle
            m = cv2.dilate(m.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
        n, labels = cv2.connectedComponents(m.astype(np.uint8), connectivity=8)
        case = {"mask": rows(m), "labels": labels.tolist(), "results": []}
        for area in (1, 2, 3, 5, 9, 30, 10 ** 6):
            for mode in ("holes", "islands"):
                out, changed = remove_small_regions(m, area, mode)
                case["results"].append({"area": area, "mode": mode, "changed": bool(changed), "mask": rows(out)})
        regions.append(case)
    # Ties: islands all under the area, two of the largest size, in an order
    # where OpenCV's numbering (by 2x2 blocks) and a plain raster scan differ.
    m = np.zeros((6, 10), bool)
    m[1, 0:2] = True
    m[0, 6:8] = True
    case = {"mask": rows(m), "labels": cv2.connectedComponents(m.astype(np.uint8), connectivity=8)[1].tolist(),
            "results": []}
    for area in (3, 5):
        out, changed = remove_small_regions(m, area, "islands")
        case["results"].append({"area": area, "mode": "islands", "changed": bool(changed), "mask": rows(out)})
    regions.append(case)
    json.dump({"crops": crops, "grids": grids, "near": near, "regions": regions}, open(OUT, "w"), separators=(",", ":"))
    print(OUT, os.path.getsize(OUT), "bytes")


if __name__ == "__main__":
    main()
