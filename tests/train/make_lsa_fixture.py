"""Golden fixture for rass::train::linear_sum_assignment: scipy's
linear_sum_assignment (scipy.optimize, the solver Mask2Former's matcher calls)
on a few larger cost matrices than brute force can check.

Writes tests/fixtures/train/lsa_scipy.safetensors:
  cost.<name>    [rows, cols] F64  the cost matrix
  assign.<name>  [min, 2]     I64  scipy's (row, col) pairs, sorted by row
metadata "unique": names whose optimum is unique (continuous random costs:
ties have probability 0), so the C++ test compares the assignment itself; for
the others (small integer costs, many ties) only the total cost is compared.

Run with Debian's python3 (/usr/bin/python3: numpy, scipy), from the repository root:
    /usr/bin/python3 tests/train/make_lsa_fixture.py
"""
import json
import os
import sys

import numpy as np
import scipy
from scipy.optimize import linear_sum_assignment

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "nn"))
import st_write  # noqa: E402

rng = np.random.default_rng(20260212)
mats = {
    "tall_100x20": rng.random((100, 20)),
    "wide_20x100": rng.random((20, 100)),
    "square_150x150": rng.random((150, 150)),
    # Mask2Former's shape: 100 queries x a few targets, costs of mixed sign.
    "queries_100x7": rng.normal(size=(100, 7)) * 3.0,
    "ties_40x30": rng.integers(0, 40, size=(40, 30)).astype(np.float64),
    "ties_25x60": rng.integers(0, 30, size=(25, 60)).astype(np.float64),
}
unique = ["tall_100x20", "wide_20x100", "square_150x150", "queries_100x7"]
tensors = {}
for name, c in mats.items():
    r, k = linear_sum_assignment(c)
    tensors["cost." + name] = c
    tensors["assign." + name] = np.stack([r, k], axis=1).astype(np.int64)
    print(f"{name}: total {c[r, k].sum():.12g}")
out = os.path.join(os.path.dirname(__file__), "..", "fixtures", "train", "lsa_scipy.safetensors")
st_write.save(out, tensors, {"unique": json.dumps(unique), "scipy": scipy.__version__})
print("wrote", os.path.normpath(out))
