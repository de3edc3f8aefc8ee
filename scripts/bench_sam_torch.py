#!/usr/bin/env python3
"""The PyTorch side of scripts/bench-sam.sh: the reference's own code (set
the image + one box prompt) on a random model of a released size, timed per
image after a warm-up; and, with --write, the model folder rass-sam runs
(the same random weights through scripts/convert_sam.py).
  --family sam     segment-anything's SamPredictor
  --family robust  RobustSAM's Sam.predict, as its eval.py calls it (its
                   checkout's robust_segment_anything in ROBUSTSAM_SRC)
  --family hq      segment-anything-hq's SamPredictor (hq_token_only False)
  --family sam2    sam2's SAM2ImagePredictor (build_sam2 with its SAM 2.1
                   config of --variant hiera_t|hiera_s|hiera_b+|hiera_l; the
                   sam2 package on PYTHONPATH, PyTorch 2)

    python3 scripts/bench_sam_torch.py [--family sam] --variant vit_b --folder DIR [--write] --image IMG --runs R --threads N
"""
import argparse
import os
import subprocess
import sys
import time

import types

import numpy as np
import torch
from PIL import Image


def reference(family, variant):
    """(model, predict(img, box) -> mask) of the reference package."""
    if family == "sam":
        from segment_anything import SamPredictor, sam_model_registry

        sam = sam_model_registry[variant]().eval()
        pred = SamPredictor(sam)

        def run(img, box):
            pred.set_image(img)
            return pred.predict(box=box, multimask_output=False)[0]
        return sam, run
    if family == "hq":
        # TinyViT (unused) imports timm.
        timm = types.ModuleType("timm")
        tm, tl, tr = (types.ModuleType(n) for n in ("timm.models", "timm.models.layers", "timm.models.registry"))
        tl.DropPath, tl.to_2tuple, tl.trunc_normal_ = torch.nn.Identity, lambda x: (x, x), lambda *a, **k: None
        tr.register_model = lambda f: f
        timm.models, tm.layers, tm.registry = tm, tl, tr
        sys.modules.update({"timm": timm, "timm.models": tm, "timm.models.layers": tl, "timm.models.registry": tr})
        from segment_anything_hq import SamPredictor, sam_model_registry

        sam = sam_model_registry[variant]().eval()
        pred = SamPredictor(sam)

        def run(img, box):
            pred.set_image(img)
            return pred.predict(box=box, multimask_output=False, hq_token_only=False)[0]
        return sam, run
    if family == "sam2":
        from sam2.build_sam import build_sam2
        from sam2.sam2_image_predictor import SAM2ImagePredictor

        sam = build_sam2(f"configs/sam2.1/sam2.1_{variant}.yaml", ckpt_path=None, device="cpu", mode="eval")
        pred = SAM2ImagePredictor(sam)

        def run(img, box):
            pred.set_image(img)
            return pred.predict(box=box, multimask_output=False)[0]
        return sam, run
    # RobustSAM: its build leaves the model in training mode, as eval.py runs it.
    sys.modules.setdefault("matplotlib", types.ModuleType("matplotlib"))
    sys.modules.setdefault("matplotlib.pyplot", types.ModuleType("matplotlib.pyplot"))
    sys.path.insert(0, os.environ["ROBUSTSAM_SRC"])
    from robust_segment_anything.build_sam import sam_model_registry
    from segment_anything.utils.transforms import ResizeLongestSide

    sam = sam_model_registry[variant](None)
    tf = ResizeLongestSide(1024)

    def run(img, box):
        h, w = img.shape[:2]
        x = torch.as_tensor(tf.apply_image(img)).permute(2, 0, 1).contiguous()[None].float()
        d = {"image": x, "original_size": (h, w),
             "boxes": torch.as_tensor(tf.apply_boxes(box[None], (h, w)), dtype=torch.float)}
        return sam.predict(None, [d], multimask_output=False)[0]["masks"]
    return sam, run


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--family", default="sam", choices=["sam", "robust", "hq", "sam2"])
    ap.add_argument("--variant", default="vit_b")
    ap.add_argument("--folder", required=True)
    ap.add_argument("--write", action="store_true")
    ap.add_argument("--image", required=True)
    ap.add_argument("--runs", type=int, default=2)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--box", default="40,30,400,300")
    ap.add_argument("--bf16-autocast", action="store_true",
                    help="also time the reference under CPU autocast to bf16 (PyTorch 2; 1.13's fails in SAM's LayerNorm)")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    sam, run = reference(a.family, a.variant)
    if a.write and not os.path.isdir(a.folder):
        pth = a.folder + ".pth"
        torch.save({"model": sam.state_dict()} if a.family == "sam2" else sam.state_dict(), pth)
        here = os.path.dirname(os.path.abspath(__file__))
        subprocess.run([sys.executable, os.path.join(here, "convert_sam.py"), pth, "-o", a.folder], check=True)
        os.remove(pth)
    img = np.array(Image.open(a.image).convert("RGB"))
    box = np.array([float(v) for v in a.box.split(",")])
    for autocast in [False] + ([True] if a.bf16_autocast else []):
        times = []
        with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
            for r in range(a.runs + 1):
                t0 = time.perf_counter()
                run(img, box)
                times.append(time.perf_counter() - t0)
        print(f"pytorch {a.family} {a.variant}{' bf16 autocast' if autocast else ''} {img.shape[1]}x{img.shape[0]}: "
              f"{sum(times[1:]) / a.runs:.2f} s/img (first {times[0]:.2f} s, torch {torch.__version__}, "
              f"{a.threads} threads)")


if __name__ == "__main__":
    main()
