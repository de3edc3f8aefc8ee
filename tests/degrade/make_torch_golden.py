#!/usr/bin/env python3
"""Golden resize and filter outputs from PyTorch, the reference pipeline's own ops.

Real-ESRGAN's GPU degradation resizes with torch.nn.functional.interpolate and
blurs with F.pad(mode='reflect') + F.conv2d (basicsr filter2D). This script runs
those torch functions on a fixed random image and writes inputs and outputs for
tests/degrade/test_torch_golden.cpp. It needs Debian's python3-torch (1.13) and
python3-numpy; the tests themselves need neither:

    /usr/bin/python3 tests/degrade/make_torch_golden.py > tests/fixtures/degrade/torch_ops.json
"""
import json

import numpy as np
import torch
import torch.nn.functional as F

rng = np.random.default_rng(20261123)
img = rng.random((1, 3, 15, 19), dtype=np.float32)
x = torch.from_numpy(img)

cases = []
for mode in ("area", "bilinear", "bicubic", "nearest"):
    for factor in (0.37, 0.81, 1.0, 1.03, 1.06, 1.43):
        kwargs = {} if mode in ("area", "nearest") else {"align_corners": False}
        y = F.interpolate(x, scale_factor=factor, mode=mode, **kwargs)
        cases.append({"op": "resize", "mode": mode, "factor": factor, "use_factor": True,
                      "width": y.shape[3], "height": y.shape[2], "out": y.numpy().ravel().tolist()})
    for (h, w) in ((7, 11), (15, 19), (26, 12)):
        kwargs = {} if mode in ("area", "nearest") else {"align_corners": False}
        y = F.interpolate(x, size=(h, w), mode=mode, **kwargs)
        cases.append({"op": "resize", "mode": mode, "factor": 0, "use_factor": False,
                      "width": w, "height": h, "out": y.numpy().ravel().tolist()})

# Blur: an anisotropic Gaussian written out here (values only; the formula is tested elsewhere).
for size in (7, 13):
    r = size // 2
    ys, xs = np.mgrid[-r:r + 1, -r:r + 1].astype(np.float64)
    k = np.exp(-0.5 * (xs ** 2 / 4.0 + xs * ys * 0.3 + ys ** 2 / 1.5))
    k = (k / k.sum()).astype(np.float32)
    kt = torch.from_numpy(k).view(1, 1, size, size)
    padded = F.pad(x.view(3, 1, 15, 19), (r, r, r, r), mode="reflect")
    y = F.conv2d(padded, kt).view(1, 3, 15, 19)
    cases.append({"op": "filter", "size": size, "kernel": k.ravel().tolist(), "out": y.numpy().ravel().tolist()})

print(json.dumps({"torch": torch.__version__, "input_shape": [3, 15, 19],
                  "input": img.ravel().tolist(), "cases": cases}))
