#!/usr/bin/env python3
"""Golden fixtures for rass-sam: a tiny Segment Anything v1 built from the
reference modules (segment-anything 1.0 from PyPI, Apache-2.0) with random
weights, run by the reference SamPredictor; and GleSAM's latent enhancement
of its embedding with a tiny SD UNet (diffusers 0.25.1) and CLIP text
encoder (transformers 4.36.2) as GleSAM's get_x0_from_noise computes it.

    /usr/bin/python3 -m venv --system-site-packages /tmp/samvenv   # Debian's python3-torch 1.13, torchvision 0.14
    /tmp/samvenv/bin/pip install --no-deps segment-anything==1.0 diffusers==0.25.1 transformers==4.36.2
    /tmp/samvenv/bin/pip install packaging regex filelock importlib_metadata pyyaml tqdm requests
    DIFFUSERS_SRC=/tmp/samvenv/lib/python3.11/site-packages /tmp/samvenv/bin/python tests/nn/make_sam_fixture.py

Writes under tests/fixtures/nn/:
  sam_tiny/       scripts/convert_sam.py's folder of the tiny SAM (plain)
  sam_tiny_gle/   the same SAM with GleSAM's enhancer: sd_tiny's UNet with
                  conv_in / conv_out replicated x8 (32 = the embedding's
                  channels; GleSAM's x64 for 4 -> 256), sd_tiny's text
                  encoder, tokenizer and scheduler, feature weight 3
  sam_a.png (53x37, upscaled into the 64 frame), sam_b.png (150x97, downscaled)
  sam_io.safetensors   the predictor's input tensors, embeddings, and for each
                  case its low-resolution logits, IoU predictions and the
                  full-size logits (return_logits=True)
  sam_cases.json  the prompt cases
  sam_c.png (160x120), sam_amg_crops.safetensors, sam_amg_crop_cases.json
                  segment everything with crop layers and the small-region
                  clean-up (OpenCV: pip install opencv-python-headless==4.6.0.66)
"""
import json
import os
import struct
import subprocess
import sys
import tempfile

import numpy as np

import reference_env

reference_env.setup()
import torch  # noqa: E402
from PIL import Image  # noqa: E402
from segment_anything.modeling import MaskDecoder  # noqa: E402
from segment_anything.automatic_mask_generator import SamAutomaticMaskGenerator  # noqa: E402
from segment_anything.predictor import SamPredictor  # noqa: E402

import st_write  # noqa: E402
from sam_tiny_common import build_tiny, randomise  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
FIX = os.path.join(ROOT, "tests", "fixtures", "nn")

TINY = dict(image_size=64, patch_size=8, embed_dim=32, depth=3, num_heads=2, mlp_ratio=2.0, window_size=3,
            global_attn_indexes=[1], use_rel_pos=True, prompt_embed_dim=32, mask_in_chans=8, decoder_depth=2,
            decoder_heads=2, decoder_mlp_dim=48, attention_downsample_rate=2, num_multimask_outputs=3,
            iou_head_depth=3, iou_head_hidden_dim=24)


def build():
    import segment_anything.modeling as m
    return build_tiny(m, TINY, MaskDecoder).eval()


def image(w, h, seed):
    r = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w]
    a = np.stack([x * 255 / w, y * 255 / h, (x + y) * 127 / (w + h)], -1)
    a[(x - w / 3) ** 2 + (y - h / 2) ** 2 < (h / 4) ** 2] = [230, 40, 60]
    a[(x > w * 0.6) & (y > h * 0.3) & (y < h * 0.8)] = [30, 200, 90]
    a += r.normal(0, 12, a.shape)
    return np.clip(a, 0, 255).astype(np.uint8)


def read_safetensors(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    out = {}
    for k, v in header.items():
        if k == "__metadata__":
            continue
        a, b = v["data_offsets"]
        dt = {"F32": np.float32, "F16": np.float16}[v["dtype"]]
        out[k] = torch.from_numpy(np.frombuffer(data[a:b], dtype=dt).reshape(v["shape"]).copy())
    return out


def enhancer(tmp):
    """sd_tiny's UNet with conv_in / conv_out replicated as GleSAM does (x8)."""
    from diffusers import UNet2DConditionModel
    from transformers.models.clip.configuration_clip import CLIPTextConfig
    from transformers.models.clip.modeling_clip import CLIPTextModel

    sd = os.path.join(FIX, "sd_tiny")
    ucfg = json.load(open(os.path.join(sd, "unet", "config.json")))
    w = read_safetensors(os.path.join(sd, "unet", "diffusion_pytorch_model.safetensors"))
    factor = TINY["prompt_embed_dim"] // ucfg["in_channels"]
    w["conv_in.weight"] = w["conv_in.weight"].repeat(1, factor, 1, 1)
    w["conv_out.weight"] = w["conv_out.weight"].repeat(factor, 1, 1, 1)
    w["conv_out.bias"] = w["conv_out.bias"].repeat(factor)
    ucfg["in_channels"] = ucfg["out_channels"] = TINY["prompt_embed_dim"]
    cfg = {k: v for k, v in ucfg.items() if not k.startswith("_")}
    unet = UNet2DConditionModel(**cfg).eval()
    unet.load_state_dict(w, strict=True)
    udir = os.path.join(tmp, "unet")
    os.makedirs(udir)
    json.dump(ucfg, open(os.path.join(udir, "config.json"), "w"), indent=2)
    st_write.save(os.path.join(udir, "diffusion_pytorch_model.safetensors"), {k: v.numpy() for k, v in w.items()})

    tcfg = json.load(open(os.path.join(sd, "text_encoder", "config.json")))
    te = CLIPTextModel(CLIPTextConfig(**{k: v for k, v in tcfg.items() if k not in ("architectures",)})).eval()
    tw = read_safetensors(os.path.join(sd, "text_encoder", "model.safetensors"))
    te.load_state_dict(tw, strict=False)
    # The empty prompt, padded as CLIPTokenizer pads it: <bos> <eos> then the pad token.
    vocab = json.load(open(os.path.join(sd, "tokenizer", "vocab.json")))
    pad = json.load(open(os.path.join(sd, "tokenizer", "special_tokens_map.json")))["pad_token"]
    pad = pad["content"] if isinstance(pad, dict) else pad
    ids = [vocab["<|startoftext|>"], vocab["<|endoftext|>"]] + [vocab[pad]] * 75
    with torch.no_grad():
        ctx = te(torch.tensor([ids]))[0]
    sched = json.load(open(os.path.join(sd, "scheduler", "scheduler_config.json")))
    from diffusers import DDIMScheduler
    s = DDIMScheduler(**{k: v for k, v in sched.items() if not k.startswith("_") and k in (
        "beta_start", "beta_end", "beta_schedule", "num_train_timesteps")})
    return unet, ctx, s.alphas_cumprod


def main():
    torch.manual_seed(0)
    sam = build()
    randomise(sam, 1, sam.mask_decoder.output_hypernetworks_mlps)
    imgs = {"a": image(53, 37, 5), "b": image(150, 97, 6)}
    for k, a in imgs.items():
        Image.fromarray(a).save(os.path.join(FIX, f"sam_{k}.png"))
    cases = [
        {"name": "points", "image": "a", "points": [[10, 12], [40, 30]], "labels": [1, 0], "multimask": False},
        {"name": "box_multi", "image": "a", "boxes": [[5, 4, 30, 25]], "multimask": True},
        {"name": "box_point", "image": "a", "boxes": [[20, 10, 50, 36]], "points": [[30, 20]], "labels": [1],
         "multimask": False},
        {"name": "boxes3", "image": "a", "boxes": [[5, 4, 30, 25], [20, 10, 50, 36], [0, 0, 52, 36]],
         "multimask": False},
        {"name": "down_point", "image": "b", "points": [[70, 40]], "labels": [1], "multimask": True},
    ]
    out = {}
    tmp = tempfile.mkdtemp()
    pth = os.path.join(tmp, "sam_tiny.pth")
    torch.save(sam.state_dict(), pth)
    unet, ctx, alphas = enhancer(tmp)
    g, T = 3.0, 1
    for dst, extra in (("sam_tiny", []), ("sam_tiny_gle", ["--enhancer-unet", os.path.join(tmp, "unet"), "--sd",
                                                           os.path.join(FIX, "sd_tiny"), "--feat-weight", str(g)])):
        target = os.path.join(FIX, dst)
        subprocess.run(["rm", "-rf", target], check=True)
        subprocess.run([sys.executable, os.path.join(ROOT, "scripts", "convert_sam.py"), pth, "-o", target,
                        "--config", json.dumps(TINY)] + extra, check=True)
    pred = SamPredictor(sam)
    with torch.no_grad():
        for k, a in imgs.items():
            pred.set_image(a)
            x = pred.transform.apply_image(a)
            xt = torch.as_tensor(x).permute(2, 0, 1).contiguous()[None]
            out[f"{k}_pixels"] = sam.preprocess(xt.float()).numpy()
            out[f"{k}_features"] = pred.features.numpy()
            # GleSAM: x = g z; eps = UNet(x, T, CLIP("")); z' = x0(x, eps) / g in float64.
            x = pred.features * g
            eps = unet(x, torch.tensor([T]), ctx).sample
            a_t = alphas.double()[T]
            x0 = ((x.double() - (1 - a_t) ** 0.5 * eps.double()) / a_t ** 0.5).float()
            out[f"{k}_gle_features"] = (x0 / g).numpy()
        for c in cases:
            for tag in ("", "gle_"):
                pred.set_image(imgs[c["image"]])
                if tag:
                    pred.features = torch.from_numpy(out[f"{c['image']}_gle_features"])
                if len(c.get("boxes", [])) > 1:
                    boxes = pred.transform.apply_boxes_torch(torch.tensor(c["boxes"], dtype=torch.float),
                                                             pred.original_size)
                    m, iou, low = pred.predict_torch(None, None, boxes=boxes, multimask_output=c["multimask"],
                                                     return_logits=True)
                    m, iou, low = m.numpy(), iou.numpy(), low.numpy()
                else:
                    pts = np.array(c["points"], dtype=np.float64) if "points" in c else None
                    lab = np.array(c["labels"]) if "labels" in c else None
                    box = np.array(c["boxes"][0], dtype=np.float64) if "boxes" in c else None
                    m, iou, low = pred.predict(pts, lab, box, multimask_output=c["multimask"], return_logits=True)
                    m, iou, low = m[None], iou[None], low[None]
                out[f"{tag}{c['name']}_logits"] = m.astype(np.float32)
                out[f"{tag}{c['name']}_iou"] = iou.astype(np.float32)
                out[f"{tag}{c['name']}_low_res"] = low.astype(np.float32)
        # The mask-input path of the prompt encoder (not reached by rass-sam's flags): decode with a
        # point and the low-resolution logits of case "points".
        pred.set_image(imgs["a"])
        mask_in = torch.from_numpy(out["points_low_res"][0])
        m, iou, low = pred.predict(np.array([[30.0, 20.0]]), np.array([1]), None, mask_input=mask_in.numpy(),
                                   multimask_output=False, return_logits=True)
        out["mask_input_low_res"] = low[None].astype(np.float32)
        out["mask_input_iou"] = iou[None].astype(np.float32)
        # Segment everything: a 4x4 grid in batches of 5 (the last batch short),
        # every mask kept and no suppression; the IoU and stability filters
        # with NMS; the stability filter alone; NMS alone; both.
        amg = [{"name": f"amg{i}_{k}", "image": k, "points_per_side": 4, "points_per_batch": 5,
                "pred_iou_thresh": piou, "stability_thresh": st, "nms_thresh": nms}
               for k in imgs for i, (piou, st, nms) in enumerate(((0.0, 0.0, 1.0), (0.05, 0.05, 0.9), (0.0, 0.2, 1.0),
                                                                   (0.0, 0.0, 0.98), (0.0, 0.1, 0.97)))]
        for c in amg:
            gen = SamAutomaticMaskGenerator(sam, points_per_side=4, points_per_batch=5,
                                            pred_iou_thresh=c["pred_iou_thresh"],
                                            stability_score_thresh=c["stability_thresh"],
                                            box_nms_thresh=c["nms_thresh"])
            anns = gen.generate(imgs[c["image"]])
            c["count"] = len(anns)
            out[c["name"] + "_box"] = np.array([[a["bbox"][0], a["bbox"][1], a["bbox"][0] + a["bbox"][2],
                                                 a["bbox"][1] + a["bbox"][3]] for a in anns]).reshape(-1, 4)
            out[c["name"] + "_iou"] = np.array([a["predicted_iou"] for a in anns])
            out[c["name"] + "_stability"] = np.array([a["stability_score"] for a in anns])
            out[c["name"] + "_point"] = np.array([a["point_coords"][0] for a in anns]).reshape(-1, 2)
            h, w = imgs[c["image"]].shape[:2]
            out[c["name"] + "_masks"] = np.stack([a["segmentation"] for a in anns] or [np.zeros((h, w))]).astype(
                np.float32)[:len(anns) or 0].reshape(-1, h, w)
    st_write.save(os.path.join(FIX, "sam_io.safetensors"), {k: np.ascontiguousarray(v, dtype=np.float32)
                                                            for k, v in out.items()})
    json.dump(cases, open(os.path.join(FIX, "sam_cases.json"), "w"), indent=1)
    json.dump(amg, open(os.path.join(FIX, "sam_amg_cases.json"), "w"), indent=1)
    amg_crops(sam)


def stable_nms(boxes, scores, idxs, iou_threshold):
    """torchvision's batched_nms (one category here) with ties in score kept
    in input order: torch's sort leaves them in an order of its own, which
    rass does not copy. IoU in float32 as torchvision computes it."""
    assert bool((idxs == idxs[0]).all()) if len(idxs) else True
    order = sorted(range(len(scores)), key=lambda i: -float(scores[i]))
    b = boxes.float()
    area = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    keep, gone = [], set()
    for oi, i in enumerate(order):
        if i in gone:
            continue
        keep.append(i)
        for j in order[oi + 1:]:
            if j in gone:
                continue
            w = torch.clamp(torch.min(b[i, 2], b[j, 2]) - torch.max(b[i, 0], b[j, 0]), min=0)
            h = torch.clamp(torch.min(b[i, 3], b[j, 3]) - torch.max(b[i, 1], b[j, 1]), min=0)
            inter = w * h
            if inter / (area[i] + area[j] - inter) > iou_threshold:
                gone.add(j)
    return torch.tensor(keep, dtype=torch.long)


def scene(w, h, seed, blobs):
    """Flat grey with a few discs and boxes of flat colours (little noise):
    regions a random SAM can tell apart."""
    r = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w]
    a = np.zeros((h, w, 3)) + 128.0
    for k in range(blobs):
        cx, cy, rad = r.uniform(0.1 * w, 0.9 * w), r.uniform(0.1 * h, 0.9 * h), r.uniform(h / 12, h / 6)
        col = r.uniform(0, 255, 3)
        if k % 2:
            a[(x - cx) ** 2 + (y - cy) ** 2 < rad ** 2] = col
        else:
            a[(abs(x - cx) < rad) & (abs(y - cy) < rad * 0.6)] = col
    a += r.normal(0, 2, a.shape)
    return np.clip(a, 0, 255).astype(np.uint8)


def flat_upscaling(sam):
    """The same SAM with each transposed convolution of the mask decoder's
    upscaling given one kernel tap for all four (nearest-neighbour-like):
    without it a random decoder draws a lattice over the whole crop, which
    the crop-edge filter always drops. tests/nn/test_sam.cpp makes the same
    change to sam_tiny."""
    import copy

    flat = copy.deepcopy(sam)
    with torch.no_grad():
        for mod in flat.mask_decoder.output_upscaling:
            if isinstance(mod, torch.nn.ConvTranspose2d):
                mod.weight.copy_(mod.weight[:, :, :1, :1].expand_as(mod.weight))
    return flat


def amg_crops(sam):
    """Segment everything with crop layers and the small-region clean-up
    (SamAutomaticMaskGenerator.generate, its OpenCV path). Recorded with
    stable_nms; each case is checked to keep the same masks with
    torchvision's own batched_nms, so no result hangs on a tie's order.
    Writes sam_c.png, sam_amg_crops.safetensors and sam_amg_crop_cases.json."""
    import segment_anything.automatic_mask_generator as amg_module

    img = scene(320, 240, 27, 5)
    Image.fromarray(img).save(os.path.join(FIX, "sam_c.png"))
    imgs = {"a": np.array(Image.open(os.path.join(FIX, "sam_a.png"))),
            "b": np.array(Image.open(os.path.join(FIX, "sam_b.png"))), "c": img}
    models = {"plain": sam, "flat": flat_upscaling(sam)}
    base = dict(model="flat", image="c", points_per_side=6, points_per_batch=7, pred_iou_thresh=0.0,
                stability_thresh=0.01, nms_thresh=0.7, crop_n_layers=0, crop_nms_thresh=0.7,
                crop_overlap_ratio=512 / 1500, crop_n_points_downscale_factor=1, min_mask_region_area=0)
    cases = [dict(base, name="crop1_c", crop_n_layers=1),
             dict(base, name="crop1_down_c", crop_n_layers=1, crop_n_points_downscale_factor=2, nms_thresh=0.9,
                  crop_nms_thresh=0.3),
             dict(base, name="crop2_c", crop_n_layers=2, crop_n_points_downscale_factor=2, crop_overlap_ratio=0.2,
                  points_per_side=8),
             dict(base, name="crop1_regions_c", crop_n_layers=1, min_mask_region_area=2500),
             dict(base, name="regions_b", model="plain", image="b", stability_thresh=0.1, nms_thresh=0.97,
                  min_mask_region_area=30),
             dict(base, name="regions_c", model="plain", points_per_side=4, nms_thresh=1.0, min_mask_region_area=300),
             dict(base, name="regions_big_a", model="plain", image="a", points_per_side=4, nms_thresh=1.0,
                  crop_nms_thresh=0.98, min_mask_region_area=400)]
    out = {}

    def run(c):
        gen = SamAutomaticMaskGenerator(
            models[c["model"]], points_per_side=c["points_per_side"], points_per_batch=c["points_per_batch"],
            pred_iou_thresh=c["pred_iou_thresh"], stability_score_thresh=c["stability_thresh"],
            box_nms_thresh=c["nms_thresh"], crop_n_layers=c["crop_n_layers"], crop_nms_thresh=c["crop_nms_thresh"],
            crop_overlap_ratio=c["crop_overlap_ratio"],
            crop_n_points_downscale_factor=c["crop_n_points_downscale_factor"],
            min_mask_region_area=c["min_mask_region_area"])
        return gen.generate(imgs[c["image"]])

    def signature(anns):
        return sorted((tuple(a["bbox"]), a["point_coords"][0][0], a["point_coords"][0][1], a["predicted_iou"])
                      for a in anns)

    torchvision_nms = amg_module.batched_nms
    for c in cases:
        amg_module.batched_nms = torchvision_nms
        theirs = run(c)
        amg_module.batched_nms = stable_nms
        anns = run(c)
        assert signature(theirs) == signature(anns), c["name"] + " depends on the order of tied scores"
        c["count"] = len(anns)
        n = c["name"]
        out[n + "_box"] = np.array([[a["bbox"][0], a["bbox"][1], a["bbox"][0] + a["bbox"][2],
                                     a["bbox"][1] + a["bbox"][3]] for a in anns], np.float32).reshape(-1, 4)
        out[n + "_crop"] = np.array([[a["crop_box"][0], a["crop_box"][1], a["crop_box"][0] + a["crop_box"][2],
                                      a["crop_box"][1] + a["crop_box"][3]] for a in anns], np.float32).reshape(-1, 4)
        out[n + "_iou"] = np.array([a["predicted_iou"] for a in anns], np.float32)
        out[n + "_stability"] = np.array([a["stability_score"] for a in anns], np.float32)
        out[n + "_point"] = np.array([a["point_coords"][0] for a in anns], np.float32).reshape(-1, 2)
        out[n + "_area"] = np.array([a["area"] for a in anns], np.float32)
        h, w = imgs[c["image"]].shape[:2]
        bits = np.stack([a["segmentation"] for a in anns]).reshape(len(anns), h * w) if anns else np.zeros((0, h * w))
        out[n + "_masks"] = np.packbits(bits.astype(np.uint8), axis=1)  # 8 pixels a byte, most significant first
        print(n, "masks:", len(anns), "crops:", sorted({tuple(a["crop_box"]) for a in anns}),
              "areas:", [a["area"] for a in anns])
    amg_module.batched_nms = torchvision_nms
    st_write.save(os.path.join(FIX, "sam_amg_crops.safetensors"), out)
    json.dump(cases, open(os.path.join(FIX, "sam_amg_crop_cases.json"), "w"), indent=1)


if __name__ == "__main__":
    main()
