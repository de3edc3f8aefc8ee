#!/usr/bin/env python3
"""Golden fixture for rass-train sam-decoder (GleSAM's decoder fine-tuning,
its train_glesam_decoder.py): the tiny random SAM of tests/fixtures/nn/sam_tiny
run by the reference modules (segment-anything 1.0 from PyPI, Apache-2.0;
GleSAM's mask decoder is SAM's with its transformer output also returned),
trained as GleSAM trains its decoder:

  * trainable: every mask_decoder parameter whose name lacks "iou"
    (SamJoint._init_weight); image and prompt encoders frozen;
  * SamPredictor's transform of the image and of the prompts, the decoder
    with multimask_output=False, its low-resolution logits upsampled
    bilinearly (align_corners=False) to the mask's size;
  * loss = focal (alpha 0.25 for every pixel, gamma 2, mean over pixels)
    + Dice (smooth 1e-6, per mask, mean), GleSAM's utils/loss.py formulas;
  * torch.optim.Adam(lr, weight_decay=1e-5) (L2 decay through the moments).

    /tmp/samvenv/bin/python tests/train/make_sam_decoder_fixture.py

(the venv of tests/nn/make_sam_fixture.py: Debian's python3-torch 1.13 and
segment-anything 1.0.) Writes under tests/fixtures/train/:
  sam_decoder_{a,b}.png        two square images (48 and 80 pixels)
  sam_decoder_{a,b}_mask.png   their soft object masks (0..255)
  sam_decoder_cases.json       the prompts of each step, lr, weight decay
  sam_decoder_ref.safetensors  the embeddings, step 0's logits and the
                               gradient of every trainable tensor, each
                               step's losses, and the trainable tensors
                               after the last step
"""
import json
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "tests", "nn"))
sys.path.insert(0, os.path.join(ROOT, "tests", "cli"))
import st_read  # noqa: E402
import st_write  # noqa: E402
from sam_tiny_common import build_tiny  # noqa: E402

from segment_anything.modeling import MaskDecoder  # noqa: E402
import segment_anything.modeling as sam_modeling  # noqa: E402
from segment_anything.predictor import SamPredictor  # noqa: E402

FIX = os.path.join(ROOT, "tests", "fixtures")
OUT = os.path.join(FIX, "train")
TINY_DIR = os.path.join(FIX, "nn", "sam_tiny")
LR, WD = 1e-3, 1e-5


def image(size, seed):
    r = np.random.default_rng(seed)
    y, x = np.mgrid[0:size, 0:size]
    a = np.stack([x * 255 / size, y * 255 / size, (x + y) * 127 / (2 * size)], -1)
    a[(x - size / 3) ** 2 + (y - size / 2) ** 2 < (size / 4) ** 2] = [230, 40, 60]
    a += r.normal(0, 12, a.shape)
    return np.clip(a, 0, 255).astype(np.uint8)


def soft_mask(size):
    """The disc of image() at 4x, box-averaged down: soft edges as a resized mask has."""
    s = 4 * size
    y, x = np.mgrid[0:s, 0:s] + 0.5
    d = ((x / 4 - size / 3) ** 2 + (y / 4 - size / 2) ** 2 < (size / 4) ** 2).astype(np.float64)
    return np.round(d.reshape(size, 4, size, 4).mean((1, 3)) * 255).astype(np.uint8)


def focal(logits, t, alpha=0.25, gamma=2.0):
    ce = F.binary_cross_entropy_with_logits(logits, t, reduction="none")
    pt = torch.exp(-ce)
    return (alpha * (1 - pt) ** gamma * ce).mean()


def dice(logits, t, smooth=1e-6):
    p = torch.sigmoid(logits).view(logits.size(0), -1)
    tf = t.view(t.size(0), -1)
    inter = (p * tf).sum(1)
    union = p.sum(1) + tf.sum(1)
    return (1 - (2 * inter + smooth) / (union + smooth)).mean()


def main():
    tiny = json.load(open(os.path.join(TINY_DIR, "sam.json")))
    sam = build_tiny(sam_modeling, tiny, MaskDecoder).eval()
    w = {k: v.float() for k, v in st_read.torch_tensors(os.path.join(TINY_DIR, "sam.safetensors")).items()}
    missing, unexpected = sam.load_state_dict(w, strict=False)
    assert not unexpected and all(k.startswith("image_encoder") is False for k in missing), (missing, unexpected)
    sam.image_encoder.requires_grad_(False)
    sam.prompt_encoder.requires_grad_(False)
    names = []
    for n, p in sam.mask_decoder.named_parameters():
        p.requires_grad = "iou" not in n
        if p.requires_grad:
            names.append(n)
    params = [p for n, p in sam.mask_decoder.named_parameters() if p.requires_grad]
    opt = torch.optim.Adam(params, lr=LR, weight_decay=WD)

    samples = {"a": 48, "b": 80}
    imgs, masks, feats = {}, {}, {}
    pred = SamPredictor(sam)
    for k, size in samples.items():
        imgs[k] = image(size, {"a": 11, "b": 12}[k])
        masks[k] = soft_mask(size)
        Image.fromarray(imgs[k]).save(os.path.join(OUT, f"sam_decoder_{k}.png"))
        Image.fromarray(masks[k]).save(os.path.join(OUT, f"sam_decoder_{k}_mask.png"))
        pred.set_image(imgs[k])
        feats[k] = pred.features.detach().clone()
    # Points inside the disc (GleSAM's three positive clicks) and a box+points step.
    steps = [
        {"image": "a", "points": [[16, 24], [10, 20], [20, 28]]},
        {"image": "b", "points": [[26, 40], [30, 35], [20, 44]]},
        {"image": "a", "points": [[15, 22], [18, 26], [12, 24]], "box": [4, 12, 28, 36]},
    ]
    out = {}
    for k in samples:
        out[f"embedding.{k}"] = feats[k].numpy()
    for i, st in enumerate(steps):
        k, size = st["image"], samples[st["image"]]
        tr = pred.transform
        pts = torch.as_tensor(tr.apply_coords(np.array(st["points"], dtype=np.float64), (size, size)),
                              dtype=torch.float)[None]
        lab = torch.ones(1, pts.shape[1])
        box = None
        if "box" in st:
            box = torch.as_tensor(tr.apply_boxes(np.array(st["box"], dtype=np.float64), (size, size)),
                                  dtype=torch.float)
        sparse, dense = sam.prompt_encoder(points=(pts, lab), boxes=box, masks=None)
        low, _ = sam.mask_decoder(image_embeddings=feats[k], image_pe=sam.prompt_encoder.get_dense_pe(),
                                  sparse_prompt_embeddings=sparse, dense_prompt_embeddings=dense,
                                  multimask_output=False)
        up = F.interpolate(low, (size, size), mode="bilinear", align_corners=False)
        t = torch.from_numpy(masks[k]).float()[None, None] / 255.0
        lf, ld = focal(up, t), dice(up, t)
        loss = lf + ld
        opt.zero_grad()
        loss.backward()
        if i == 0:
            out["step0.logits"] = low.detach().numpy()
            for n, p in sam.mask_decoder.named_parameters():
                if p.requires_grad:
                    out["step0.grad.mask_decoder." + n] = p.grad.numpy().copy()
        out[f"step{i}.losses"] = np.array([loss.item(), lf.item(), ld.item()], dtype=np.float64)
        opt.step()
    for n, p in sam.mask_decoder.named_parameters():
        if p.requires_grad:
            out["final.mask_decoder." + n] = p.detach().numpy().copy()
    st_write.save(os.path.join(OUT, "sam_decoder_ref.safetensors"), out,
                  {"torch": torch.__version__, "steps": str(len(steps))})
    json.dump({"lr": LR, "weight_decay": WD, "steps": steps, "trainable": ["mask_decoder." + n for n in names]},
              open(os.path.join(OUT, "sam_decoder_cases.json"), "w"), indent=1)
    print("wrote", len(out), "tensors;", len(names), "trainable")


if __name__ == "__main__":
    main()
