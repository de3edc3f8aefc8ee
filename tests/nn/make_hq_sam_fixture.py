#!/usr/bin/env python3
"""Golden fixtures for HQ-SAM in rass-sam: a tiny random HQ-SAM built from
the reference's own modules (segment-anything-hq 0.3 from PyPI, Apache-2.0;
SysCV/sam-hq) and run by its SamPredictor (the HQ output token and HQ
features, hq_token_only both ways) and its SamAutomaticMaskGenerator (one
mask per point: the best of SAM's three plus the HQ mask).

    /tmp/samvenv/bin/pip install --no-deps segment-anything-hq==0.3
    /tmp/samvenv/bin/python tests/nn/make_hq_sam_fixture.py

(the SAM venv of make_sam_fixture.py; timm, imported by its TinyViT, is
stubbed.) Writes under tests/fixtures/nn/:
  hq_sam_tiny/           scripts/convert_sam.py's folder ("hq": true)
  hq_sam_io.safetensors  the embedding, early features, HQ features, and per
                         case the low-resolution logits, IoU and full-size
                         logits; the generator's masks (np.packbits), boxes,
                         scores and points
  hq_sam_cases.json      the cases
"""
import json
import os
import subprocess
import sys
import tempfile
import types

import numpy as np
import torch
from PIL import Image

timm = types.ModuleType("timm")  # TinyViT's imports (unused here)
tm, tl, tr = (types.ModuleType(n) for n in ("timm.models", "timm.models.layers", "timm.models.registry"))
tl.DropPath, tl.to_2tuple, tl.trunc_normal_ = torch.nn.Identity, lambda x: (x, x), lambda *a, **k: None
tr.register_model = lambda f: f
timm.models, tm.layers, tm.registry = tm, tl, tr
sys.modules.update({"timm": timm, "timm.models": tm, "timm.models.layers": tl, "timm.models.registry": tr})

from segment_anything_hq.automatic_mask_generator import SamAutomaticMaskGenerator  # noqa: E402
from segment_anything_hq.modeling import MaskDecoderHQ  # noqa: E402
from segment_anything_hq.predictor import SamPredictor  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import st_write  # noqa: E402
from sam_tiny_common import build_tiny, randomise  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(HERE))
FIX = os.path.join(ROOT, "tests", "fixtures", "nn")

TINY = dict(image_size=64, patch_size=8, embed_dim=32, depth=3, num_heads=2, mlp_ratio=2.0, window_size=3,
            global_attn_indexes=[1], use_rel_pos=True, prompt_embed_dim=32, mask_in_chans=8, decoder_depth=2,
            decoder_heads=2, decoder_mlp_dim=48, attention_downsample_rate=2, num_multimask_outputs=3,
            iou_head_depth=3, iou_head_hidden_dim=24)


def build():
    import segment_anything_hq.modeling as m
    return build_tiny(m, TINY, MaskDecoderHQ, vit_dim=TINY["embed_dim"]).eval()


def main():
    torch.manual_seed(0)
    sam = build()
    randomise(sam, 21, list(sam.mask_decoder.output_hypernetworks_mlps) + [sam.mask_decoder.hf_mlp], half=True)
    imgs = {k: np.array(Image.open(os.path.join(FIX, f"sam_{k}.png")).convert("RGB")) for k in ("a", "b")}
    cases = [
        {"name": "box", "image": "b", "boxes": [[20, 10, 110, 80]], "multimask": False, "hq_only": False},
        {"name": "points", "image": "b", "points": [[40, 30], [120, 70]], "labels": [1, 0], "multimask": False,
         "hq_only": False},
        {"name": "point_multi", "image": "b", "points": [[70, 40]], "labels": [1], "multimask": True,
         "hq_only": False},
        {"name": "box_hq_only", "image": "a", "boxes": [[5, 4, 30, 25]], "multimask": False, "hq_only": True},
        {"name": "multi_hq_only", "image": "a", "points": [[30, 20]], "labels": [1], "multimask": True,
         "hq_only": True},
    ]
    tmp = tempfile.mkdtemp()
    pth = os.path.join(tmp, "hq_sam_tiny.pth")
    torch.save({k: v.half() if v.is_floating_point() else v for k, v in sam.state_dict().items()}, pth)
    target = os.path.join(FIX, "hq_sam_tiny")
    subprocess.run(["rm", "-rf", target], check=True)
    subprocess.run([sys.executable, os.path.join(ROOT, "scripts", "convert_sam.py"), pth, "-o", target,
                    "--config", json.dumps(TINY)], check=True)
    out = {}
    pred = SamPredictor(sam)
    with torch.no_grad():
        for k, a in imgs.items():
            pred.set_image(a)
            out[f"{k}_embedding"] = pred.features.numpy()
            out[f"{k}_early"] = pred.interm_features[0].numpy()
            dec = sam.mask_decoder
            out[f"{k}_hq_features"] = (dec.embedding_encoder(pred.features) +
                                       dec.compress_vit_feat(pred.interm_features[0].permute(0, 3, 1, 2))).numpy()
        for c in cases:
            pred.set_image(imgs[c["image"]])
            pts = np.array(c["points"], dtype=np.float64) if "points" in c else None
            lab = np.array(c["labels"]) if "labels" in c else None
            box = np.array(c["boxes"][0], dtype=np.float64) if "boxes" in c else None
            m, iou, low = pred.predict(pts, lab, box, multimask_output=c["multimask"], return_logits=True,
                                       hq_token_only=c["hq_only"])
            out[c["name"] + "_logits"] = m.astype(np.float32)
            out[c["name"] + "_iou"] = iou.astype(np.float32)
            out[c["name"] + "_low_res"] = low.astype(np.float32)
        # Segment everything: one mask per point (multimask: the best of SAM's
        # three plus the HQ mask), a 4x4 grid in batches of 5, no filter and
        # no suppression.
        amg = {"name": "amg_a", "image": "a", "points_per_side": 4, "points_per_batch": 5,
               "pred_iou_thresh": 0.0, "stability_thresh": 0.0, "nms_thresh": 1.0}
        gen = SamAutomaticMaskGenerator(sam, points_per_side=4, points_per_batch=5, pred_iou_thresh=0.0,
                                        stability_score_thresh=0.0, box_nms_thresh=1.0)
        anns = gen.generate(imgs["a"])
        amg["count"] = len(anns)
        out["amg_a_box"] = np.array([[a["bbox"][0], a["bbox"][1], a["bbox"][0] + a["bbox"][2],
                                      a["bbox"][1] + a["bbox"][3]] for a in anns], np.float32).reshape(-1, 4)
        out["amg_a_iou"] = np.array([a["predicted_iou"] for a in anns], np.float32)
        out["amg_a_point"] = np.array([a["point_coords"][0] for a in anns], np.float32).reshape(-1, 2)
        h, w = imgs["a"].shape[:2]
        out["amg_a_masks"] = np.packbits(np.stack([a["segmentation"] for a in anns]).reshape(len(anns), h * w)
                                         .astype(np.uint8), axis=1)
    st_write.save(os.path.join(FIX, "hq_sam_io.safetensors"),
                  {k: np.ascontiguousarray(v) if v.dtype == np.uint8 else np.ascontiguousarray(v, dtype=np.float32)
                   for k, v in out.items()})
    json.dump({"cases": cases, "everything": amg}, open(os.path.join(FIX, "hq_sam_cases.json"), "w"), indent=1)
    print("masks kept by the generator:", amg["count"])


if __name__ == "__main__":
    main()
