#!/usr/bin/env python3
"""PyTorch eager side of scripts/bench-train.sh: seconds per RAS training
step (forward + backward + AdamW) of the released code (Ka1Guan/RASS's
backbone with its Seg LoRA, FeatureProjection, Mask2Former's head, through
tests/nn/rass_reference.py) on a segmentation model folder, with the fixed
loss bench/bench_train_ras.cpp's "fixed" step uses.

    RASS_SRC=... MASK2FORMER_SRC=... python scripts/bench_train_ras_torch.py MODEL_DIR [crop] [batch] [steps] [threads]

The folder's head configuration must be the tiny-seg preset's (the sizes
below), as tests/fixtures/nn/ras_tiny has it.
"""
import json
import os
import sys
import time

import torch
from safetensors.torch import load_file

here = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(here, "..", "tests", "nn"))
import mask2former_reference as m2f  # noqa: E402
import rass_reference as rr  # noqa: E402

folder = sys.argv[1]
crop = int(sys.argv[2]) if len(sys.argv) > 2 else 128
batch = int(sys.argv[3]) if len(sys.argv) > 3 else 2
steps = int(sys.argv[4]) if len(sys.argv) > 4 else 5
threads = int(sys.argv[5]) if len(sys.argv) > 5 else 2
torch.set_num_threads(threads)
state = rr.setup("")
from transformers import CLIPTextModel, CLIPTokenizer  # noqa: E402
import restoration_adaptation.models.vae as rvae  # noqa: E402

rvae.DiagonalGaussianDistribution.sample = lambda self, generator=None: self.mean
seg = json.load(open(os.path.join(folder, "segment.json")))
tok = CLIPTokenizer.from_pretrained(os.path.join(folder, "tokenizer"))
clip = CLIPTextModel.from_pretrained(os.path.join(folder, "text_encoder")).eval()
unet = state["UNet2DConditionModel"].from_pretrained(os.path.join(folder, "unet"))
vae = state["AutoencoderKL"].from_pretrained(os.path.join(folder, "vae")).eval()
gen = rr.build_generator(tok, clip, vae, unet)
params = dict(gen.unet.named_parameters())
with torch.no_grad():
    for k, v in load_file(os.path.join(folder, "seg_lora.safetensors")).items():
        params[k].copy_(v)
fp = seg["feature_projection"]
fpm = rr.build_feature_projection(gen, fp["feature_dims"], fp["feature_strides"], projection_dim=fp["projection_dim"])
h = seg["head"]
keys = ["num_queries", "hidden_dim", "nheads", "dim_feedforward", "dec_layers", "mask_dim", "conv_dim", "norm_groups",
        "enc_layers", "enc_dim_feedforward", "enc_nheads", "enc_n_points", "in_channels", "num_classes"]
head = m2f.build_head({k: h[k] for k in keys if k in h})
sh = load_file(os.path.join(folder, "seg_head.safetensors"))
fpm.feature_projections.load_state_dict({k[20:]: v for k, v in sh.items() if k.startswith("feature_projections.")})
head.load_state_dict({k[13:]: v for k, v in sh.items() if k.startswith("sem_seg_head.")})
gen.requires_grad_(False)
for n, p in gen.unet.named_parameters():
    if "lora" in n:
        p.requires_grad = True
gen.unet.conv_in.requires_grad_(True)
fpm.feature_projections.requires_grad_(True)
head.requires_grad_(True)
head.train()
trainable = [p for m in (gen.unet, fpm.feature_projections, head) for p in m.parameters() if p.requires_grad]
opt = torch.optim.AdamW(trainable, lr=1e-4, weight_decay=0.05)
torch.manual_seed(0)
x = torch.rand(batch, 3, crop, crop) * 2 - 1
times = []
for r in range(steps + 1):
    t0 = time.perf_counter()
    opt.zero_grad()
    taps = gen(x, batch={"prompt": ["wall sky tree"] * batch})
    o = head(fpm.forward_features(taps, x.shape[-2:]))
    preds = [(o["pred_logits"], o["pred_masks"])] + [(a["pred_logits"], a["pred_masks"]) for a in o["aux_outputs"]]
    loss = sum((lg * torch.randn_like(lg)).mean() + (mk * torch.randn_like(mk)).mean() for lg, mk in preds)
    loss.backward()
    opt.step()
    if r:
        times.append(time.perf_counter() - t0)
times.sort()
print(f"torch  ras step, crop {crop}, batch {batch}, {threads} threads: fixed {times[len(times) // 2]:.3f} s/step "
      f"(median of {steps}; PyTorch {torch.__version__} eager)")
