#!/usr/bin/env python3
"""Golden outputs of ImageNet-C corruptions from imagecorruptions 1.1.2.

(skimage.filters.gaussian is called as before its `multichannel` argument
became `channel_axis`: the wrapper below maps one to the other.)

Writes tests/fixtures/degrade/corruptions.json for tests/degrade/test_corruptions.cpp.
Needs imagecorruptions 1.1.2 with NumPy, SciPy, scikit-image, OpenCV and
Pillow (made with NumPy 2.4.6, SciPy 1.17.1, scikit-image 0.26.0 in a venv):

    python3 -m venv /tmp/icvenv
    /tmp/icvenv/bin/pip install imagecorruptions==1.1.2 numpy scipy scikit-image \\
        opencv-python-headless==4.10.0.84 Pillow setuptools
    /tmp/icvenv/bin/python tests/degrade/make_corruption_golden.py

Inputs are formula images (below). The reference draws its randomness from
np.random; here np.random.uniform and np.random.normal are replaced by two
fixed streams the C++ test reproduces exactly:
    u_k = fmod((k + 1) * 0.6180339887498949, 1)        (uniform, k = 0, 1, ...)
    z_k = (fmod((k + 1) * 0.7548776662466927, 1) - 0.5) * 3.4   (normal)
so uniform(lo, hi) = lo + (hi - lo) u_k, randint(lo, hi) = lo + floor((hi - lo) u_k)
and normal(loc, scale) = loc + scale z_k,
arrays filled in row-major order. Outputs are stored in [0, 1] (the
reference's 0-255 values / 255), before any rounding to 8 bits.
"""
import json
import math
import os
import sys

import numpy as np

if not hasattr(np, "float_"):  # imagecorruptions 1.1.2 predates NumPy 2
    np.float_ = np.float64
import imagecorruptions.corruptions as ic  # noqa: E402
import skimage.filters  # noqa: E402
from PIL import Image  # noqa: E402


def _gaussian(image, sigma=1, multichannel=False, **kwargs):
    """skimage's gaussian before `multichannel` became `channel_axis` (0.19)."""
    return skimage.filters.gaussian(image, sigma=sigma, channel_axis=-1 if multichannel else None, **kwargs)


ic.gaussian = _gaussian

PHI = 0.6180339887498949
PLASTIC = 0.7548776662466927


class Streams:
    def __init__(self):
        self.ku = 0
        self.kz = 0

    def u(self):
        self.ku += 1
        return math.fmod(self.ku * PHI, 1.0)

    def z(self):
        self.kz += 1
        return (math.fmod(self.kz * PLASTIC, 1.0) - 0.5) * 3.4

    def uniform(self, low=0.0, high=1.0, size=None):
        if size is None:
            return low + (high - low) * self.u()
        n = int(np.prod(size))
        return np.array([low + (high - low) * self.u() for _ in range(n)]).reshape(size)

    def randint(self, low, high=None, size=None):
        if high is None:  # randint(n): 0..n-1
            low, high = 0, low
        n = 1 if size is None else int(np.prod(size))
        v = np.array([low + int(math.floor((high - low) * self.u())) for _ in range(n)])
        return v[0] if size is None else v.reshape(size)

    def normal(self, loc=0.0, scale=1.0, size=None):
        if size is None:
            return loc + scale * self.z()
        n = int(np.prod(size))
        return np.array([loc + scale * self.z() for _ in range(n)]).reshape(size)


def patched(fn, *args, skip=0, **kwargs):
    s = Streams()
    for _ in range(skip):  # start the uniform stream further on
        s.u()
    saved = np.random.uniform, np.random.normal, np.random.randint
    np.random.uniform, np.random.normal, np.random.randint = s.uniform, s.normal, s.randint
    try:
        return fn(*args, **kwargs)
    finally:
        np.random.uniform, np.random.normal, np.random.randint = saved


def rgb_image(w, h):
    x, y = np.meshgrid(np.arange(w), np.arange(h))
    r = (11 * x + 5 * y) % 256
    g = (x * x + 3 * y * y) % 256
    b = (255 - 9 * x + 4 * y) % 256
    return np.stack([r, g, b], axis=2).astype(np.uint8)


def gray_image(w, h):
    x, y = np.meshgrid(np.arange(w), np.arange(h))
    return ((13 * x + 7 * y + x * y) % 256).astype(np.uint8)


def planar(a):
    """HWC or HW array in 0-255 -> CHW list in [0, 1], 8 significant digits."""
    a = np.asarray(a, dtype=np.float64) / 255.0
    if a.ndim == 2:
        a = a[None]
    else:
        a = a.transpose(2, 0, 1)
    return [float("%.8g" % v) for v in a.ravel()]


def main():
    out_path = sys.argv[1] if len(sys.argv) > 1 else "tests/fixtures/degrade/corruptions.json"
    rgb = rgb_image(24, 19)
    gray = gray_image(21, 16)
    tiny = rgb_image(9, 7)
    wide = rgb_image(34, 12)  # zoom blur: np.arange's factors move crops at width 34
    field = gray_image(48, 40)  # spatter: room for drops (a few hundred pixels wet)
    images = {"rgb": rgb, "gray": gray, "tiny": tiny, "wide": wide, "field": field}
    cases = []

    def add(name, image, params, out):
        cases.append({"name": name, "image": image, "params": params, "output": planar(out)})

    for s in (1, 5):
        add("contrast", "rgb", {"severity": s}, ic.contrast(rgb, s))
    for s in (2, 5):
        add("brightness", "rgb", {"severity": s}, ic.brightness(rgb, s))
    add("brightness", "gray", {"severity": 3}, ic.brightness(gray, 3))
    for radius, sigma, angle in ((10, 3, -45.0), (15, 5, -30.5), (15, 8, 0.0), (20, 15, 17.3), (10, 3, 45.0)):
        out = np.clip(ic._motion_blur(rgb, radius=radius, sigma=sigma, angle=angle), 0, 255)
        add("motion_blur", "rgb", {"radius": radius, "sigma": sigma, "angle": angle}, out)
    add("motion_blur", "gray", {"radius": 15, "sigma": 8, "angle": -81.0},
        np.clip(ic._motion_blur(gray, radius=15, sigma=8, angle=-81.0), 0, 255))
    add("motion_blur", "tiny", {"radius": 10, "sigma": 3, "angle": 30.0},
        np.clip(ic._motion_blur(tiny, radius=10, sigma=3, angle=30.0), 0, 255))
    plasma = []
    for size, decay in ((8, 2.0), (32, 1.7)):
        m = patched(ic.plasma_fractal, mapsize=size, wibbledecay=decay)
        plasma.append({"mapsize": size, "decay": decay, "map": [float("%.12g" % v) for v in m.ravel()]})
    for s in (1, 3, 5):
        add("fog", "rgb", {"severity": s}, patched(ic.fog, rgb, s))
    add("fog", "gray", {"severity": 2}, patched(ic.fog, gray, 2))
    for s in (1, 2, 3, 4, 5):
        # The angle is the only uniform draw; it follows the layer's normals.
        st = Streams()
        angle = st.uniform(-135, -45)
        add("snow", "rgb", {"severity": s, "angle": angle}, patched(ic.snow, rgb, s))
    st = Streams()
    add("snow", "gray", {"severity": 1, "angle": st.uniform(-135, -45)}, patched(ic.snow, gray, 1))

    add("speckle_noise", "rgb", {"severity": 2}, patched(ic.speckle_noise, rgb, 2))
    for s in (1, 5):
        add("defocus_blur", "rgb", {"severity": s}, ic.defocus_blur(rgb, s))
    add("defocus_blur", "gray", {"severity": 3}, ic.defocus_blur(gray, 3))
    for s in (1, 4):
        add("zoom_blur", "rgb", {"severity": s}, ic.zoom_blur(rgb, s))
    add("zoom_blur", "gray", {"severity": 5}, ic.zoom_blur(gray, 5))
    for s in (2, 5):
        add("zoom_blur", "wide", {"severity": s}, ic.zoom_blur(wide, s))
    for s in (1, 4):
        add("glass_blur", "rgb", {"severity": s}, patched(ic.glass_blur, rgb, s))
    # A gray image as imagecorruptions.corrupt() takes it, RGB of one gray (the
    # 2-D function blurs along the rows alone and swaps where RGB copies).
    add("glass_blur", "gray", {"severity": 2}, patched(ic.glass_blur, np.stack((gray,) * 3, axis=-1), 2)[..., 0])
    for s in (1, 5):
        add("pixelate", "rgb", {"severity": s}, np.array(ic.pixelate(Image.fromarray(rgb), s)))
    for s in (1, 4, 5):
        add("saturate", "rgb", {"severity": s}, ic.saturate(rgb, s))
    add("saturate", "gray", {"severity": 3}, ic.saturate(gray, 3))
    for s in (2, 5):
        add("elastic", "rgb", {"severity": s}, patched(ic.elastic_transform, rgb, s))
    add("elastic", "gray", {"severity": 3}, patched(ic.elastic_transform, gray, 3))

    for s in (1, 3, 4, 5):
        add("spatter", "rgb", {"severity": s}, patched(ic.spatter, Image.fromarray(rgb), s))
    for s in (1, 3, 5):
        add("spatter", "field", {"severity": s}, patched(ic.spatter, Image.fromarray(field), s))

    # Frost: the reference reads its photographs through resource_filename;
    # here six small formula pictures of our own (tests/fixtures/degrade/frost),
    # sized to take each of its scaling branches.
    frost_dir = os.path.join(os.path.dirname(out_path), "frost")
    os.makedirs(frost_dir, exist_ok=True)
    sizes = {"frost1.png": (40, 30), "frost2.png": (16, 12), "frost3.png": (30, 8),
             "frost4.jpg": (8, 40), "frost5.jpg": (50, 50), "frost6.jpg": (10, 10)}
    for name, (w, h) in sizes.items():
        x, y = np.meshgrid(np.arange(w), np.arange(h))
        pic = np.stack([(200 + 3 * x) % 256, (220 + 2 * y) % 256, (180 + x * y) % 256], axis=2).astype(np.uint8)
        Image.fromarray(pic).save(os.path.join(frost_dir, name), quality=95)
    ic.resource_filename = lambda _pkg, rel: os.path.join(frost_dir, os.path.basename(rel))
    names = ["frost1.png", "frost2.png", "frost3.png", "frost4.jpg", "frost5.jpg", "frost6.jpg"]
    for image, s, skip in (("rgb", 1, 0), ("rgb", 2, 1), ("rgb", 3, 3), ("rgb", 4, 4), ("rgb", 5, 2), ("gray", 3, 1)):
        x = images[image]
        st = Streams()
        for _ in range(skip):
            st.u()
        idx = st.randint(5)
        fr = ic.cv2.imread(os.path.join(frost_dir, names[idx]))
        fh, fw = fr.shape[:2]
        h, w = x.shape[:2]
        if fh >= h and fw >= w:
            f = 1
        elif fh < h and fw >= w:
            f = h / fh
        elif fh >= h and fw < w:
            f = w / fw
        else:
            f = max(h / fh, w / fw)
        f *= 1.1
        rw, rh = int(np.ceil(fw * f)), int(np.ceil(fh * f))
        crop_y, crop_x = st.randint(0, rh - h), st.randint(0, rw - w)
        add("frost", image, {"severity": s, "picture": int(idx), "crop_y": int(crop_y), "crop_x": int(crop_x)},
            patched(ic.frost, x, s, skip=skip))

    doc = {
        "made_by": "tests/degrade/make_corruption_golden.py",
        "reference": "imagecorruptions 1.1.2, NumPy %s" % np.__version__,
        "images": {k: {"width": int(v.shape[1]), "height": int(v.shape[0]),
                       "channels": 1 if v.ndim == 2 else int(v.shape[2]), "data": planar(v)}
                   for k, v in images.items()},
        "plasma": plasma,
        "cases": cases,
    }
    os.makedirs(os.path.dirname(out_path), exist_ok=True)
    with open(out_path, "w") as f:
        json.dump(doc, f, separators=(",", ":"))
        f.write("\n")
    print("wrote", out_path, len(cases), "cases")


if __name__ == "__main__":
    main()
