#!/usr/bin/env python3
"""The reference half of scripts/bench-iqa-musiq.sh: pyiqa's MUSIQ at the
released size (hidden 384, 14 layers, 6 heads, MLP 1152, one score) with
random weights (timings do not depend on the values), converted by
scripts/convert_iqa_musiq.py for rass; N random-structure 512x512 images;
pyiqa's scores and images per second (one image a forward, fp32, CPU).

    PYIQA_SRC=/tmp/pyiqa-dl/x python scripts/bench_iqa_musiq_ref.py OUTDIR [N] [threads]

Writes OUTDIR/musiq_full.safetensors, OUTDIR/images.safetensors (img_<i>
uint8) and OUTDIR/ref_scores.txt. pyiqa (non-commercial licence) is only run
here, as the reference being compared with; see
tests/nn/make_iqa_musiq_fixture.py for how to make it importable.
"""
import importlib.util
import os
import sys
import time

import numpy as np
import torch
from safetensors.torch import save_file

out = sys.argv[1]
n = int(sys.argv[2]) if len(sys.argv) > 2 else 8
threads = int(sys.argv[3]) if len(sys.argv) > 3 else os.cpu_count()
torch.set_num_threads(threads)
sys.path.insert(0, os.environ["PYIQA_SRC"])
import pyiqa.archs.musiq_arch as musiq_arch  # noqa: E402

here = os.path.dirname(os.path.abspath(__file__))
spec = importlib.util.spec_from_file_location("convert_iqa_musiq", os.path.join(here, "convert_iqa_musiq.py"))
converter = importlib.util.module_from_spec(spec)
spec.loader.exec_module(converter)

torch.manual_seed(3)
net = musiq_arch.MUSIQ(pretrained=False).eval()
with torch.no_grad():
    for name, p in net.named_parameters():
        if name.endswith("bias") or "_emb" in name or name.endswith(".cls"):
            p.copy_(torch.randn_like(p) * 0.02)
        if name == "head.weight":
            p.copy_(torch.randn_like(p) * 0.05)  # the default zero head would score every image alike
pth = os.path.join(out, "musiq_full.pth")
torch.save(net.state_dict(), pth)
converter.convert(pth, os.path.join(out, "musiq_full.safetensors"))
os.remove(pth)

rng = np.random.default_rng(0)
imgs = []
for i in range(n):
    yy, xx = np.mgrid[0:512, 0:512]
    base = np.stack([np.sin(xx / (9 + c + i) + yy / (13 + 2 * c)) for c in range(3)], -1) * 80 + 128
    imgs.append(np.clip(base + rng.normal(0, 20, (512, 512, 3)), 0, 255).astype(np.uint8))
save_file({f"img_{i}": torch.from_numpy(a) for i, a in enumerate(imgs)}, os.path.join(out, "images.safetensors"))

xs = [torch.from_numpy(a).permute(2, 0, 1)[None].float() / 255 for a in imgs]
with torch.inference_mode():
    net(xs[0])  # warm-up
    t0 = time.perf_counter()
    scores = [float(net(x).reshape(-1)[0]) for x in xs]
    s = time.perf_counter() - t0
with open(os.path.join(out, "ref_scores.txt"), "w") as f:
    for i, v in enumerate(scores):
        f.write(f"score_{i} {v:.9g}\n")
print(f"pyiqa: {n} images 512x512, {threads} threads: {s:.3f} s, {n / s:.2f} images/s "
      f"(torch {torch.__version__})")
