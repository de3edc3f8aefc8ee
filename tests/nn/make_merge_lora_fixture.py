#!/usr/bin/env python3
"""Reference target lists for rass-merge-lora init-seg (tests/nn/test_merge_lora.cpp).

RASS stage 2 (Ka1Guan/RASS, restoration_adaptation/ras.py, unet_lora) puts
its Seg LoRA on the UNet's parameters selected by OSEDiff's rule: a parameter
name without "bias" or "norm" containing one of the l_grep patterns, grouped
encoder (down_blocks, conv_in) / decoder (up_blocks, conv_out) / others, then
drops the exact name "conv_out". This script applies that documented rule to
the parameter names of diffusers' own UNet2DConditionModel, so the test checks
that the C++ module names and grouping give the same lists.

Two configs: the tiny fixture UNet (tests/fixtures/nn/unet_tiny) and SD
2.1-base's block layout with tiny channel counts (block_out_channels
[10, 20, 40, 40]: the same resnets with and without conv_shortcut, the same
attentions and samplers; the names do not depend on the widths).

    /tmp/loravenv/bin/python tests/nn/make_merge_lora_fixture.py tests/fixtures/nn/merge_lora

(torch 2.1.2, diffusers 0.25.1; see tests/fixtures/nn/README-lora.md).
"""
import json
import os
import sys

import diffusers
from diffusers import UNet2DConditionModel

PATTERNS = ["to_k", "to_q", "to_v", "to_out.0", "conv", "conv1", "conv2", "conv_in", "conv_shortcut",
            "proj_out", "proj_in", "ff.net.2", "ff.net.0.proj"]  # RASS stage 2's list (no conv_out)


def groups(unet):
    enc, dec, oth = [], [], []
    for n, _ in unet.named_parameters():
        if "bias" in n or "norm" in n:
            continue
        if not any(p in n for p in PATTERNS):
            continue
        name = n[: -len(".weight")]
        if "down_blocks" in n or "conv_in" in n:
            enc.append(name)
        elif "up_blocks" in n or "conv_out" in n:
            dec.append(name)
        else:
            oth.append(name)
    dec = [d for d in dec if d != "conv_out"]
    oth = [o for o in oth if o != "conv_out"]
    return {"encoder": enc, "decoder": dec, "others": oth}


here = os.path.dirname(os.path.abspath(__file__))
tiny = UNet2DConditionModel.from_pretrained(os.path.join(here, "..", "fixtures", "nn", "unet_tiny"))
sd21_layout = dict(
    sample_size=8, in_channels=4, out_channels=4,
    down_block_types=["CrossAttnDownBlock2D"] * 3 + ["DownBlock2D"],
    up_block_types=["UpBlock2D"] + ["CrossAttnUpBlock2D"] * 3,
    block_out_channels=[10, 20, 40, 40], layers_per_block=2, norm_num_groups=10,
    cross_attention_dim=8, attention_head_dim=[5, 10, 20, 20], use_linear_projection=True)
sd21 = UNet2DConditionModel(**sd21_layout)
out = {"diffusers": diffusers.__version__, "unet_tiny": groups(tiny),
       "sd21_layout": {"config": sd21_layout, **groups(sd21)}}
with open(os.path.join(sys.argv[1], "seg_targets.json"), "w") as f:
    json.dump(out, f, indent=1)
for k in ("unet_tiny", "sd21_layout"):
    print(k, {g: len(out[k][g]) for g in ("encoder", "decoder", "others")})
