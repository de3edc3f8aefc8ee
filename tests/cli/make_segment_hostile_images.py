"""Writes the odd-shaped inputs of tests/cli/test_segment_hostile.sh.

Run: python3 tests/cli/make_segment_hostile_images.py (needs numpy and PIL).
They are inputs, not expected values: the expected sizes and exit codes in
the test are worked by hand from detectron2's ResizeShortestEdge formula.
"""
import os

import numpy as np
from PIL import Image

out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fixtures", "segment_hostile")
os.makedirs(out, exist_ok=True)
rng = np.random.default_rng(0)
# 60000x3: the 2048 cap on the long side leaves the short side 0.1 px -> 0.
Image.new("RGB", (60000, 3), (10, 20, 30)).save(os.path.join(out, "wide_60000x3.png"))
# 3x2000: processed 3x2048, padded 8 wide: under the coarsest stride (32).
Image.fromarray(rng.integers(0, 256, (2000, 3, 3), dtype=np.uint8)).save(os.path.join(out, "tall_3x2000.png"))
# 8x8 with --no-resize: the same at native resolution.
Image.fromarray(rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)).save(os.path.join(out, "small_8x8.png"))
# 16-bit gray: refused, the message must not name another tool.
Image.fromarray(rng.integers(0, 65536, (16, 16), dtype=np.uint16)).save(os.path.join(out, "gray16.png"))
