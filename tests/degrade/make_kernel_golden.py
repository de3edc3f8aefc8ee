#!/usr/bin/env python3
"""Golden blur kernels for tests/degrade/test_kernels.cpp.

An independent oracle: the kernel formulas of REFERENCE.md section 1 written
directly in numpy/scipy (scipy.special.j1 for the sinc kernel), not a port of
the C++ code. Run with Debian's python3-numpy and python3-scipy:

    /usr/bin/python3 tests/degrade/make_kernel_golden.py > tests/fixtures/degrade/kernels.json
"""
import json
import math

import numpy as np
from scipy import special


def quad_form(size, sx, sy, theta):
    """x^T Sigma^-1 x on a grid centred at 0, x = column offset, y = row offset."""
    rot = np.array([[math.cos(theta), -math.sin(theta)], [math.sin(theta), math.cos(theta)]])
    sigma = rot @ np.diag([sx * sx, sy * sy]) @ rot.T
    inv = np.linalg.inv(sigma)
    r = size // 2
    ys, xs = np.mgrid[-r:r + 1, -r:r + 1].astype(np.float64)
    return inv[0, 0] * xs * xs + (inv[0, 1] + inv[1, 0]) * xs * ys + inv[1, 1] * ys * ys


def kernel(spec):
    t, size = spec["type"], spec["size"]
    if t == "sinc":
        wc = spec["cutoff"]
        r = size // 2
        ys, xs = np.mgrid[-r:r + 1, -r:r + 1].astype(np.float64)
        d = np.hypot(xs, ys)
        with np.errstate(invalid="ignore", divide="ignore"):
            k = wc * special.j1(wc * d) / (2 * np.pi * d)
        k[r, r] = wc * wc / (4 * np.pi)
    else:
        q = quad_form(size, spec["sigma_x"], spec["sigma_y"], spec["theta"])
        beta = spec.get("beta", 1.0)
        if t in ("iso", "aniso", "gaussian"):
            k = np.exp(-0.5 * q)
        elif t.startswith("generalized"):
            k = np.exp(-0.5 * q ** beta)
        else:
            k = 1.0 / (q ** beta + 1.0)
    return k / k.sum()


SPECS = [
    {"type": "iso", "size": 7, "sigma_x": 0.7, "sigma_y": 0.7, "theta": 0.0},
    {"type": "iso", "size": 21, "sigma_x": 3.0, "sigma_y": 3.0, "theta": 0.0},
    {"type": "aniso", "size": 13, "sigma_x": 2.5, "sigma_y": 0.6, "theta": 0.7},
    {"type": "aniso", "size": 21, "sigma_x": 0.4, "sigma_y": 2.9, "theta": -2.3},
    {"type": "generalized_iso", "size": 15, "sigma_x": 1.7, "sigma_y": 1.7, "theta": 0.0, "beta": 0.6},
    {"type": "generalized_aniso", "size": 17, "sigma_x": 2.2, "sigma_y": 1.1, "theta": 1.9, "beta": 3.5},
    {"type": "plateau_iso", "size": 11, "sigma_x": 1.3, "sigma_y": 1.3, "theta": 0.0, "beta": 1.4},
    {"type": "plateau_aniso", "size": 19, "sigma_x": 2.8, "sigma_y": 0.9, "theta": -0.4, "beta": 1.9},
    {"type": "sinc", "size": 7, "cutoff": math.pi / 2},
    {"type": "sinc", "size": 21, "cutoff": math.pi / 4.5},
    {"type": "sinc", "size": 13, "cutoff": 2.9},
]

print(json.dumps([dict(spec, kernel=kernel(spec).ravel().tolist()) for spec in SPECS], indent=0))
