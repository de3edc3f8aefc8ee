#!/usr/bin/env python3
"""The PyTorch side of scripts/bench-sam.sh: segment-anything's own
SamPredictor (set_image + one box prompt) on a random SAM of a released size,
timed per image after a warm-up; and, with --write, the model folder
rass-sam runs (the same random weights through scripts/convert_sam.py).

    python3 scripts/bench_sam_torch.py --variant vit_b --folder DIR [--write] --image IMG --runs R --threads N
"""
import argparse
import os
import subprocess
import sys
import time

import numpy as np
import torch
from PIL import Image
from segment_anything import SamPredictor, sam_model_registry


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--variant", default="vit_b")
    ap.add_argument("--folder", required=True)
    ap.add_argument("--write", action="store_true")
    ap.add_argument("--image", required=True)
    ap.add_argument("--runs", type=int, default=2)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--box", default="40,30,400,300")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    sam = sam_model_registry[a.variant]().eval()
    if a.write and not os.path.isdir(a.folder):
        pth = a.folder + ".pth"
        torch.save(sam.state_dict(), pth)
        here = os.path.dirname(os.path.abspath(__file__))
        subprocess.run([sys.executable, os.path.join(here, "convert_sam.py"), pth, "-o", a.folder], check=True)
        os.remove(pth)
    img = np.array(Image.open(a.image).convert("RGB"))
    box = np.array([float(v) for v in a.box.split(",")])
    pred = SamPredictor(sam)
    times = []
    with torch.inference_mode():
        for r in range(a.runs + 1):
            t0 = time.perf_counter()
            pred.set_image(img)
            pred.predict(box=box, multimask_output=False)
            times.append(time.perf_counter() - t0)
    print(f"pytorch {a.variant} {img.shape[1]}x{img.shape[0]}: {sum(times[1:]) / a.runs:.2f} s/img "
          f"(first {times[0]:.2f} s, torch {torch.__version__}, {a.threads} threads)")


if __name__ == "__main__":
    main()
