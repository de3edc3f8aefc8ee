#!/usr/bin/env python3
"""Golden fixtures for SAM 2 / 2.1 in rass-sam: a tiny random SAM2Base built
from the reference's own modules (facebookresearch/sam2, Apache-2.0) and run
by its SAM2ImagePredictor (the square resize with antialiasing, the Hiera
trunk and FPN neck, no_mem_embed, the high-resolution features, boxes as
points with labels 2 and 3, the dynamic multimask choice by stability) and
its SAM2AutomaticMaskGenerator (use_m2m off, its default, and on).

SAM 2 needs PyTorch 2 (scaled_dot_product_attention) and torchvision >= 0.17
(Resize antialiases tensors): a venv with the PyTorch wheel, the sam2 source
on PYTHONPATH (no build of its CUDA extension: the image predictor does not
use it), hydra-core and iopath (imported by the package):

    python3 -m venv /tmp/t211
    /tmp/t211/bin/pip install --no-deps torch==2.11.0 torchvision==0.26.0
    /tmp/t211/bin/pip install numpy pillow hydra-core iopath tqdm filelock fsspec jinja2 networkx sympy \\
        typing_extensions
    /tmp/t211/bin/pip install scipy
    PYTHONPATH=/path/to/sam2 /tmp/t211/bin/python tests/nn/make_sam2_fixture.py

(with --no-deps the wheel's CUDA libraries come from LD_LIBRARY_PATH; the
ones scripts/build-cuda.sh unpacks under ~/.cache/rass serve.) Writes under
tests/fixtures/nn/:
  sam2_tiny/           scripts/convert_sam.py's folder (architecture "sam2";
                       the memory modules' tensors dropped)
  sam2_io.safetensors  per image the image embedding and high-resolution
                       features; per case the low-resolution logits, IoU and
                       full-size logits; per generator case its masks
                       (np.packbits), boxes, scores, points and crops
  sam2_cases.json      the cases
"""
import json
import os
import subprocess
import sys
import tempfile

import numpy as np
import torch
from PIL import Image

from sam2.modeling.backbones.hieradet import Hiera
from sam2.modeling.backbones.image_encoder import FpnNeck, ImageEncoder
from sam2.modeling.memory_attention import MemoryAttention, MemoryAttentionLayer
from sam2.modeling.memory_encoder import CXBlock, Fuser, MaskDownSampler, MemoryEncoder
from sam2.modeling.position_encoding import PositionEmbeddingSine
from sam2.modeling.sam2_base import SAM2Base
from sam2.modeling.sam.transformer import RoPEAttention
from sam2.automatic_mask_generator import SAM2AutomaticMaskGenerator
from sam2.sam2_image_predictor import SAM2ImagePredictor

import sam2.utils.misc  # noqa: E402


def connected_components_cpu(mask):
    """sam2.utils.misc.get_connected_components (its CUDA extension's
    8-connected labelling, which the generator's min_mask_region_area needs)
    on the CPU with scipy: labels and each pixel's component area, [N, 1, H, W]."""
    from scipy import ndimage
    m = mask.to(torch.uint8).cpu().numpy()
    labels, counts = np.zeros(m.shape, np.int32), np.zeros(m.shape, np.int32)
    for i in range(m.shape[0]):
        lab, _ = ndimage.label(m[i, 0], structure=np.ones((3, 3), int))
        sizes = np.bincount(lab.ravel())
        sizes[0] = 0
        labels[i, 0], counts[i, 0] = lab, sizes[lab]
    return torch.from_numpy(labels), torch.from_numpy(counts)


# Without the extension the predictor would skip the clean-up with a warning.
sam2.utils.misc.get_connected_components = connected_components_cpu

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import st_write  # noqa: E402
from sam_tiny_common import randomise  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(HERE))
FIX = os.path.join(ROOT, "tests", "fixtures", "nn")

# The trunk: 4 stages of 1, 2, 3, 1 blocks from 8 channels; block 4 global.
# 256 px in: maps of 64, 32, 16 and 8 px, so stage 3's windows of 14 pad its
# 16x16 map to 2x2 windows of 28x28, stage 4's of 7 its 8x8 map to 14x14;
# features of 64, 32 and 16 px, 64x64 logits.
TINY = dict(image_size=256, embed_dim=8, num_heads=1, stages=[1, 2, 3, 1], global_att_blocks=[4],
            window_spec=[8, 4, 14, 7], window_pos_embed_bkg_spatial_size=[7, 7], prompt_embed_dim=32)
D = TINY["prompt_embed_dim"]


def build():
    trunk = Hiera(embed_dim=TINY["embed_dim"], num_heads=TINY["num_heads"], stages=TINY["stages"],
                  global_att_blocks=TINY["global_att_blocks"], window_spec=TINY["window_spec"],
                  window_pos_embed_bkg_spatial_size=TINY["window_pos_embed_bkg_spatial_size"])
    neck = FpnNeck(position_encoding=PositionEmbeddingSine(num_pos_feats=D, normalize=True, temperature=10000),
                   d_model=D, backbone_channel_list=trunk.channel_list, fpn_top_down_levels=[2, 3],
                   fpn_interp_model="nearest")
    g = TINY["image_size"] // 16
    rope = dict(rope_theta=10000.0, feat_sizes=[g, g], embedding_dim=D, num_heads=1, downsample_rate=1, dropout=0.1)
    layer = MemoryAttentionLayer(activation="relu", cross_attention=RoPEAttention(rope_k_repeat=True, kv_in_dim=16,
                                                                                  **rope),
                                 d_model=D, dim_feedforward=64, dropout=0.1, pos_enc_at_attn=False,
                                 pos_enc_at_cross_attn_keys=True, pos_enc_at_cross_attn_queries=False,
                                 self_attention=RoPEAttention(**rope))
    memory_attention = MemoryAttention(d_model=D, pos_enc_at_input=True, layer=layer, num_layers=1)
    memory_encoder = MemoryEncoder(out_dim=16, mask_downsampler=MaskDownSampler(embed_dim=D, kernel_size=3, stride=2,
                                                                                padding=1),
                                   fuser=Fuser(CXBlock(dim=D, kernel_size=7, padding=3), num_layers=1),
                                   position_encoding=PositionEmbeddingSine(num_pos_feats=16, normalize=True),
                                   in_dim=D)
    return SAM2Base(image_encoder=ImageEncoder(trunk=trunk, neck=neck, scalp=1), memory_attention=memory_attention,
                    memory_encoder=memory_encoder, num_maskmem=7, image_size=TINY["image_size"], backbone_stride=16,
                    use_high_res_features_in_sam=True, multimask_output_in_sam=True,
                    iou_prediction_use_sigmoid=True, directly_add_no_mem_embed=True, pred_obj_scores=True,
                    pred_obj_scores_mlp=True, use_multimask_token_for_obj_ptr=True, use_obj_ptrs_in_encoder=True,
                    use_mlp_for_obj_ptr_proj=True, proj_tpos_enc_in_obj_ptrs=True,
                    sam_mask_decoder_extra_args=dict(dynamic_multimask_via_stability=True,
                                                     dynamic_multimask_stability_delta=0.05,
                                                     dynamic_multimask_stability_thresh=0.98)).eval()


def main():
    torch.manual_seed(0)
    sam = build()
    randomise(sam, 31, list(sam.sam_mask_decoder.output_hypernetworks_mlps))
    pred = SAM2ImagePredictor(sam)
    s = TINY["image_size"]
    pred._bb_feat_sizes = [(s // 4, s // 4), (s // 8, s // 8), (s // 16, s // 16)]  # its table assumes 1024
    imgs = {k: np.array(Image.open(os.path.join(FIX, f"sam_{k}.png")).convert("RGB")) for k in ("a", "b", "c")}
    cases = [
        {"name": "box", "image": "b", "boxes": [[20, 10, 110, 80]], "multimask": False},
        {"name": "points", "image": "b", "points": [[40, 30], [120, 70]], "labels": [1, 0], "multimask": False},
        {"name": "point_multi", "image": "c", "points": [[170, 90]], "labels": [1], "multimask": True},
        {"name": "box_points", "image": "c", "boxes": [[30, 40, 250, 200]], "points": [[100, 100]], "labels": [0],
         "multimask": False},
        {"name": "two_boxes", "image": "a", "boxes": [[5, 4, 30, 25], [20, 10, 50, 35]], "multimask": False},
        {"name": "two_boxes_c", "image": "c", "boxes": [[203, 64, 272, 122], [161, 175, 194, 232], [2, 126, 214, 155]],
         "multimask": False},
        {"name": "point_a", "image": "a", "points": [[30, 20]], "labels": [1], "multimask": False},
        {"name": "point_c", "image": "c", "points": [[60, 200]], "labels": [1], "multimask": False},
    ]
    tmp = tempfile.mkdtemp()
    pth = os.path.join(tmp, "sam2_tiny.pt")
    torch.save({"model": sam.state_dict()}, pth)  # the released checkpoints' layout
    target = os.path.join(FIX, "sam2_tiny")
    subprocess.run(["rm", "-rf", target], check=True)
    config = {k: TINY[k] for k in ("image_size", "embed_dim", "num_heads", "stages", "global_att_blocks",
                                   "window_spec", "window_pos_embed_bkg_spatial_size", "prompt_embed_dim")}
    subprocess.run([sys.executable, os.path.join(ROOT, "scripts", "convert_sam.py"), pth, "-o", target,
                    "--config", json.dumps(config)], check=True)
    out = {}
    with torch.no_grad():
        for k, a in imgs.items():
            pred.set_image(a)
            out[f"{k}_embedding"] = pred._features["image_embed"].numpy()
            out[f"{k}_high_res_s0"] = pred._features["high_res_feats"][0].numpy()
            out[f"{k}_high_res_s1"] = pred._features["high_res_feats"][1].numpy()
        stable = []
        for c in cases:
            pred.set_image(imgs[c["image"]])
            pts = np.array(c["points"], dtype=np.float64) if "points" in c else None
            lab = np.array(c["labels"]) if "labels" in c else None
            box = np.array(c["boxes"], dtype=np.float64) if "boxes" in c else None
            if box is not None and len(box) == 1:
                box = box[0]
            m, iou, low = pred.predict(pts, lab, box, multimask_output=c["multimask"], return_logits=True)
            if m.ndim == 3:  # one object: [masks, H, W]
                m, iou, low = m[None], iou[None], low[None]
            out[c["name"] + "_logits"] = m.astype(np.float32)
            out[c["name"] + "_iou"] = iou.astype(np.float32)
            out[c["name"] + "_low_res"] = low.astype(np.float32)
            if not c["multimask"]:
                # Which mask token the dynamic choice took: 0 when the
                # single-mask output is stable, else the best of 1..3.
                # The decoder run again, its four masks compared with the output.
                feats = pred._features
                concat = None
                if pts is not None:
                    concat = (torch.as_tensor(pred._transforms.transform_coords(
                        torch.as_tensor(pts, dtype=torch.float), True, pred._orig_hw[-1]))[None],
                        torch.as_tensor(lab, dtype=torch.int)[None])
                if box is not None:
                    bx = pred._transforms.transform_boxes(torch.as_tensor(box, dtype=torch.float).reshape(-1, 4),
                                                          True, pred._orig_hw[-1])
                    bl = torch.tensor([[2, 3]], dtype=torch.int).repeat(bx.size(0), 1)
                    concat = (bx, bl) if concat is None else (torch.cat([bx, concat[0]], 1),
                                                              torch.cat([bl, concat[1]], 1))
                sp, de = sam.sam_prompt_encoder(points=concat, boxes=None, masks=None)
                allm, alli, _, obj = sam.sam_mask_decoder.predict_masks(
                    feats["image_embed"], sam.sam_prompt_encoder.get_dense_pe(), sp, de, repeat_image=sp.size(0) > 1,
                    high_res_features=feats["high_res_feats"])
                # (the predictor's low-resolution logits are clamped to [-32, 32])
                tok = [int(torch.argmin((allm[i].clamp(-32, 32) - torch.as_tensor(low[i, 0])).abs().flatten(1).max(1)[0]))
                       for i in range(allm.size(0))]
                c["tokens"] = tok
                stable += tok
                out[c["name"] + "_object_score"] = obj.numpy().astype(np.float32)
        # A mask prompt: the "points" case's low-resolution logits fed back.
        pred.set_image(imgs["b"])
        mc = {"name": "mask_input", "image": "b", "points": [[60, 40]], "labels": [1], "multimask": True,
              "mask_from": "points"}
        m, iou, low = pred.predict(np.array(mc["points"], dtype=np.float64), np.array(mc["labels"]),
                                   mask_input=out["points_low_res"][0], multimask_output=True, return_logits=True)
        out["mask_input_logits"], out["mask_input_iou"], out["mask_input_low_res"] = m[None], iou[None], low[None]
        cases.append(mc)
        # Segment everything: a 4x4 grid on the whole image; then crop layer 1
        # (2x2 crops, 4x4 points each) with the small-region clean-up (SAM
        # 2's: holes and sprinkles of the low-resolution logits, which
        # clears a random decoder's speckle, so that crop masks pass the
        # crop-edge filter).
        amg = [
            {"name": "amg_b", "image": "b", "points_per_side": 4, "points_per_batch": 5, "pred_iou_thresh": 0.5,
             "stability_thresh": 0.0, "nms_thresh": 1.0, "crop_layers": 0, "crop_points_downscale": 1,
             "min_region_area": 0},
            {"name": "amg_c", "image": "c", "points_per_side": 4, "points_per_batch": 64, "pred_iou_thresh": 0.0,
             "stability_thresh": 0.0, "nms_thresh": 1.0, "crop_layers": 1, "crop_points_downscale": 1,
             "crop_nms_thresh": 1.0, "min_region_area": 60},
            # Every filter on: IoU, stability, box NMS, a crop layer and the
            # crop suppression, with the clean-up.
            {"name": "amg_filters", "image": "c", "points_per_side": 4, "points_per_batch": 64,
             "pred_iou_thresh": 0.1, "stability_thresh": 0.3, "nms_thresh": 0.7, "crop_layers": 1,
             "crop_points_downscale": 1, "crop_nms_thresh": 0.7, "min_region_area": 40},
            # use_m2m: every mask refined once with its own low-resolution
            # logits as the mask prompt, then filtered; with and without the
            # clean-up and a crop layer.
            {"name": "amg_m2m_b", "image": "b", "points_per_side": 4, "points_per_batch": 5, "pred_iou_thresh": 0.5,
             "stability_thresh": 0.0, "nms_thresh": 1.0, "crop_layers": 0, "crop_points_downscale": 1,
             "min_region_area": 0, "use_m2m": True},
            {"name": "amg_m2m_filters", "image": "c", "points_per_side": 4, "points_per_batch": 7,
             "pred_iou_thresh": 0.1, "stability_thresh": 0.3, "nms_thresh": 0.7, "crop_layers": 1,
             "crop_points_downscale": 1, "crop_nms_thresh": 0.7, "min_region_area": 40, "use_m2m": True},
        ]
        for a in amg:
            gen = SAM2AutomaticMaskGenerator(sam, points_per_side=a["points_per_side"],
                                             points_per_batch=a["points_per_batch"],
                                             pred_iou_thresh=a["pred_iou_thresh"],
                                             stability_score_thresh=a["stability_thresh"],
                                             box_nms_thresh=a["nms_thresh"], crop_n_layers=a["crop_layers"],
                                             crop_n_points_downscale_factor=a["crop_points_downscale"],
                                             crop_nms_thresh=a.get("crop_nms_thresh", 0.7),
                                             min_mask_region_area=a["min_region_area"],
                                             use_m2m=a.get("use_m2m", False))
            gen.predictor._bb_feat_sizes = pred._bb_feat_sizes
            anns = gen.generate(imgs[a["image"]])
            a["count"] = len(anns)
            n = a["name"]
            out[n + "_box"] = np.array([[b["bbox"][0], b["bbox"][1], b["bbox"][0] + b["bbox"][2],
                                         b["bbox"][1] + b["bbox"][3]] for b in anns], np.float32).reshape(-1, 4)
            out[n + "_iou"] = np.array([b["predicted_iou"] for b in anns], np.float32)
            out[n + "_stability"] = np.array([b["stability_score"] for b in anns], np.float32)
            out[n + "_point"] = np.array([b["point_coords"][0] for b in anns], np.float32).reshape(-1, 2)
            out[n + "_crop"] = np.array([[b["crop_box"][0], b["crop_box"][1], b["crop_box"][0] + b["crop_box"][2],
                                          b["crop_box"][1] + b["crop_box"][3]] for b in anns],
                                        np.float32).reshape(-1, 4)  # its XYWH as x0, y0, x1, y1
            h, w = imgs[a["image"]].shape[:2]
            out[n + "_masks"] = np.packbits(np.stack([b["segmentation"] for b in anns]).reshape(len(anns), h * w)
                                            .astype(np.uint8), axis=1)
    st_write.save(os.path.join(FIX, "sam2_io.safetensors"),
                  {k: np.ascontiguousarray(v) if v.dtype == np.uint8 else np.ascontiguousarray(v, dtype=np.float32)
                   for k, v in out.items()})
    json.dump({"tiny": TINY, "cases": cases, "everything": amg}, open(os.path.join(FIX, "sam2_cases.json"), "w"),
              indent=1)
    print("generator masks kept (and from crops):",
          [(a["name"], a["count"], int((out[a["name"] + "_crop"][:, 2] < imgs[a["image"]].shape[1]).sum() +
                                       (out[a["name"] + "_crop"][:, 0] > 0).sum())) for a in amg])
    print("dynamic choices (0: single-mask token kept):", stable)


if __name__ == "__main__":
    main()
