#!/usr/bin/env python3
"""Golden fixture for rass-train sam-enhancer (GleSAM's first stage: its
train_glesam_denoising_unet.py with models/sd_unifined_model_CRE_addlora.py),
computed with the reference modules: segment-anything 1.0's image encoder
(the tiny random SAM of tests/fixtures/nn/sam_tiny), diffusers 0.25.1's
UNet2DConditionModel and CLIP from transformers 4.36.2 (tests/fixtures/nn/sd_tiny),
PEFT 0.7.1's LoRA as diffusers' add_adapter injects it:

  * GleSAM's SAM_Encoder input: the [0, 1] image x 255, its vendored
    ResizeLongestSide.apply_image_torch (bilinear, antialias; the size from
    H and W, where PyPI's segment-anything 1.0 reads B and C), normalised, padded;
  * Channel Replication and Expansion: the UNet built with in/out channels of
    the embedding (ignore_mismatched_sizes), conv_in's weight repeated along
    its inputs, conv_out's weight and bias along its outputs, conv_in's bias kept;
  * LoraConfig(r=8, lora_alpha=8, lora_dropout=0, GleSAM's target modules);
    the adapters set to random values here (PEFT's B = 0 would give A no
    gradient), written to the fixture for the test to load;
  * x = g z_L; eps = UNet(x, 1, CLIP("")); x0 in float64 (get_x0_from_noise);
    loss = MSE(x0, g z_H) over a batch of two pairs; every adapter's gradient.

    /tmp/pyt/py tests/train/make_sam_enhancer_fixture.py

(a Python with torch, segment-anything==1.0, diffusers==0.25.1,
transformers==4.36.2, peft==0.7.1, accelerate==0.25.0; this session's was
torch 2.11's CPU wheel.) Writes under tests/fixtures/train/:
  sam_enhancer_{a,b}_{hq,lq}.png  two 32x32 pairs (LQ: HQ with noise and blur)
  sam_enhancer_ref.safetensors    the adapters' values, the embeddings, x0,
                                  the loss, every adapter's gradient
  sam_enhancer_cases.json         g, T, the adapted layers, the trainable names
"""
import json
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageFilter

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "tests", "nn"))
sys.path.insert(0, os.path.join(ROOT, "tests", "cli"))
import st_read  # noqa: E402
import st_write  # noqa: E402
from sam_tiny_common import build_tiny  # noqa: E402

import segment_anything.modeling as sam_modeling  # noqa: E402
from segment_anything.modeling import MaskDecoder  # noqa: E402
from segment_anything.utils.transforms import ResizeLongestSide  # noqa: E402

FIX = os.path.join(ROOT, "tests", "fixtures")
OUT = os.path.join(FIX, "train")
TINY_DIR = os.path.join(FIX, "nn", "sam_tiny")
SD = os.path.join(FIX, "nn", "sd_tiny")
G, T, SIZE = 5, 1, 32
TARGETS = ["to_q", "to_k", "to_v", "to_out.0", "proj_in", "proj_out", "ff.net.0.proj", "ff.net.2",
           "conv1", "conv2", "conv_shortcut", "downsamplers.0.conv", "upsamplers.0.conv",
           "time_emb_proj", "conv_in", "conv_out"]


def image(seed):
    r = np.random.default_rng(seed)
    y, x = np.mgrid[0:SIZE, 0:SIZE]
    a = np.stack([x * 255 / SIZE, y * 255 / SIZE, (x + y) * 127 / (2 * SIZE)], -1)
    a[(x - SIZE / 3) ** 2 + (y - SIZE / 2) ** 2 < (SIZE / 4) ** 2] = [230, 40, 60]
    a += r.normal(0, 8, a.shape)
    hq = np.clip(a, 0, 255).astype(np.uint8)
    lq = np.asarray(Image.fromarray(hq).filter(ImageFilter.GaussianBlur(1.2))).astype(np.float64)
    lq = np.clip(lq + r.normal(0, 20, lq.shape), 0, 255).astype(np.uint8)
    return hq, lq


def encoder_input(sam, img):
    """GleSAM's SAM_Encoder.forward on the dataset's [0, 1] image."""
    x = torch.from_numpy(img).permute(2, 0, 1).float()[None] / 255.0
    x = x * 255.0
    # GleSAM's vendored ResizeLongestSide.apply_image_torch: the size from
    # the image's H and W (segment-anything 1.0 on PyPI takes B and C there).
    r = ResizeLongestSide(sam.image_encoder.img_size)
    x = F.interpolate(x, r.get_preprocess_shape(x.shape[2], x.shape[3], r.target_length), mode="bilinear",
                      align_corners=False, antialias=True)
    return torch.stack([sam.preprocess(v) for v in x], 0)


def main():
    from diffusers import DDPMScheduler, UNet2DConditionModel
    from peft import LoraConfig
    from transformers import CLIPTextModel, CLIPTokenizer

    torch.manual_seed(0)
    tiny = json.load(open(os.path.join(TINY_DIR, "sam.json")))
    sam = build_tiny(sam_modeling, tiny, MaskDecoder).eval()
    w = {k: v.float() for k, v in st_read.torch_tensors(os.path.join(TINY_DIR, "sam.safetensors")).items()}
    sam.load_state_dict(w, strict=True)
    D = tiny["prompt_embed_dim"]

    pairs = {k: image(s) for k, s in (("a", 21), ("b", 22))}
    for k, (hq, lq) in pairs.items():
        Image.fromarray(hq).save(os.path.join(OUT, f"sam_enhancer_{k}_hq.png"))
        Image.fromarray(lq).save(os.path.join(OUT, f"sam_enhancer_{k}_lq.png"))
    with torch.no_grad():
        gt_lq = torch.cat([encoder_input(sam, pairs[k][0]) for k in "ab"] +
                          [encoder_input(sam, pairs[k][1]) for k in "ab"])
        latent = sam.image_encoder(gt_lq)
    hq_feat, lq_feat = latent[:2].float(), latent[2:].float()

    # CRE, as SDUniModel.__init__ does it.
    base = UNet2DConditionModel.from_pretrained(SD, subfolder="unet").float()
    ciw, cib = base.conv_in.weight.data, base.conv_in.bias.data
    cow, cob = base.conv_out.weight.data, base.conv_out.bias.data
    n = D // base.config.in_channels
    unet = UNet2DConditionModel.from_pretrained(SD, subfolder="unet", in_channels=D, out_channels=D,
                                                low_cpu_mem_usage=False, ignore_mismatched_sizes=True).float()
    unet.conv_in.weight.data.copy_(ciw.repeat(1, n, 1, 1))
    unet.conv_in.bias.data.copy_(cib)
    unet.conv_out.weight.data.copy_(cow.repeat(n, 1, 1, 1))
    unet.conv_out.bias.data.copy_(cob.repeat(n))
    unet.requires_grad_(False)
    unet.add_adapter(LoraConfig(r=8, target_modules=TARGETS, lora_alpha=8, lora_dropout=0.0))
    g = torch.Generator().manual_seed(3)
    out, names, layers = {}, [], []
    with torch.no_grad():
        for name, p in unet.named_parameters():
            if "lora_" in name:
                p.copy_(0.2 * torch.randn(p.shape, generator=g) / max(1, p[0].numel()) ** 0.5)
                out["lora." + name] = p.detach().numpy().copy()
                names.append(name)
                if ".lora_A." in name:
                    layers.append(name[: name.index(".lora_A.")])
    tok = CLIPTokenizer.from_pretrained(SD, subfolder="tokenizer")
    te = CLIPTextModel.from_pretrained(SD, subfolder="text_encoder").eval()
    ids = tok([""], max_length=tok.model_max_length, padding="max_length", truncation=True, return_tensors="pt").input_ids
    with torch.no_grad():
        ctx = te(ids)[0]
    alphas = DDPMScheduler.from_pretrained(SD, subfolder="scheduler").alphas_cumprod

    x = lq_feat * G
    t = torch.ones(2, dtype=torch.long) * T
    eps = unet(x, t.long(), ctx.repeat(2, 1, 1)).sample
    a = alphas.double()[t].reshape(-1, 1, 1, 1)
    x0 = ((x.double() - (1 - a) ** 0.5 * eps.double()) / a ** 0.5).float()
    loss = F.mse_loss(x0, hq_feat * G)
    loss.backward()
    out["z_hq"] = hq_feat.numpy()
    out["z_lq"] = lq_feat.numpy()
    out["x0"] = x0.detach().numpy()
    out["loss"] = np.array([loss.item()], dtype=np.float64)
    for name, p in unet.named_parameters():
        if p.requires_grad:
            out["grad." + name] = p.grad.numpy().copy()
    st_write.save(os.path.join(OUT, "sam_enhancer_ref.safetensors"), out, {"torch": torch.__version__})
    json.dump({"feat_weight": G, "timestep": T, "size": SIZE, "adapted": sorted(layers), "trainable": names},
              open(os.path.join(OUT, "sam_enhancer_cases.json"), "w"), indent=1)
    print("wrote", len(out), "tensors;", len(layers), "adapted layers; loss", loss.item())


if __name__ == "__main__":
    main()
