#!/usr/bin/env python3
"""Golden fixture of rass-train ras's backward pass: the gradients of one step
of RASS stage 2, computed by the released code, on the tiny RAS folder
tests/fixtures/nn/ras_tiny (tests/train/test_ras_grad.cpp reproduces them).

Runs Ka1Guan/RASS's own backbone (VAE and UNet forwards with their feature
taps, Generator_with_pretrain.forward and encode_prompt, unet_lora for the Seg
LoRA's targets and adapters, FeatureProjection.forward_features) and
Mask2Former's head, through tests/nn/rass_reference.py and
mask2former_reference.py (which say what is stood in), in the virtual
environment of the other fixtures, with checkouts outside the repository:
    RASS_SRC=/path/to/Ka1Guan/RASS MASK2FORMER_SRC=/path/to/Mask2Former \
      /tmp/loravenv/bin/python tests/train/make_ras_grad_fixture.py tests/fixtures/train
The weights are the folder's (unet/ with SCR merged, seg_lora.safetensors into
the adapters unet_lora adds, seg_head.safetensors); trainable as set_train
makes them (the Seg LoRA, conv_in) plus the projection and the head.

The loss is a fixed differentiable function of the head's outputs (the
Mask2Former criterion's matching is tested on its own): for the final
prediction and every aux prediction k, mean(pred_logits_k * A_k) +
mean(pred_masks_k * M_k) with fixed random A_k, M_k. The VAE latent is its
mean (latent_dist.sample() replaced, as make_ras_fixture.py does).

Writes ras_grad.safetensors: x [2, 3, 64, 64] (the LQ batch in [-1, 1]),
A<k>, M<k>, loss, and grad.<name> for every trainable parameter by the C++
stage's names (unet.<...> without PEFT's ".base_layer", feature_projections.*,
sem_seg_head.*); metadata: the two prompts.
"""
import os
import sys

import torch
from safetensors.torch import load_file, save_file

here = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(here, "..", "nn"))
import mask2former_reference as m2f  # noqa: E402
import rass_reference as rr  # noqa: E402

PROMPTS = ["wall sky tree", ""]
out = sys.argv[1]
folder = os.path.join(here, "..", "fixtures", "nn", "ras_tiny")
state = rr.setup("")
from transformers import CLIPTextModel, CLIPTokenizer  # noqa: E402
import restoration_adaptation.models.vae as rvae  # noqa: E402

rvae.DiagonalGaussianDistribution.sample = lambda self, generator=None: self.mean
torch.manual_seed(0)
tok = CLIPTokenizer.from_pretrained(os.path.join(folder, "tokenizer"))
clip = CLIPTextModel.from_pretrained(os.path.join(folder, "text_encoder")).eval()
unet = state["UNet2DConditionModel"].from_pretrained(os.path.join(folder, "unet")).eval()
vae = state["AutoencoderKL"].from_pretrained(os.path.join(folder, "vae")).eval()
gen = rr.build_generator(tok, clip, vae, unet)
lora = load_file(os.path.join(folder, "seg_lora.safetensors"))
params = dict(gen.unet.named_parameters())
with torch.no_grad():
    for k, v in lora.items():
        params[k].copy_(v)
assert all(k in params for k in lora), "Seg LoRA keys that unet_lora did not create"
assert sum(1 for k in params if ".lora_" in k) == len(lora), "adapters the file does not fill"
dims = [16, 16, 32, 32, 16, 16]
fpm = rr.build_feature_projection(gen, dims, [4, 8, 32, 16, 8, 8], projection_dim=128)
head_cfg = dict(num_queries=8, hidden_dim=32, nheads=4, dim_feedforward=64, dec_layers=4, mask_dim=32, conv_dim=32,
                norm_groups=32, enc_layers=1, enc_dim_feedforward=64, enc_nheads=4, enc_n_points=4,
                in_channels=[128] * 4)
head = m2f.build_head(head_cfg)
sh = load_file(os.path.join(folder, "seg_head.safetensors"))
fpm.feature_projections.load_state_dict({k[len("feature_projections."):]: v for k, v in sh.items()
                                         if k.startswith("feature_projections.")})
head.load_state_dict({k[len("sem_seg_head."):]: v for k, v in sh.items() if k.startswith("sem_seg_head.")})

# Trainable as released: Generator_with_pretrain.set_train (Seg LoRA, conv_in), projection, head.
gen.requires_grad_(False)
for n, p in gen.unet.named_parameters():
    if "lora" in n:
        p.requires_grad = True
gen.unet.conv_in.requires_grad_(True)
fpm.feature_projections.requires_grad_(True)
head.requires_grad_(True)

x = torch.rand(2, 3, 64, 64) * 2 - 1
taps = gen(x, batch={"prompt": PROMPTS})
feats = fpm.forward_features(taps, x.shape[-2:])
o = head(feats)
preds = [(o["pred_logits"], o["pred_masks"])] + [(a["pred_logits"], a["pred_masks"]) for a in o["aux_outputs"]]
tensors = {"x": x}
loss = 0
for k, (lg, mk) in enumerate(preds):
    A, M = torch.randn_like(lg), torch.randn_like(mk)
    tensors[f"A{k}"], tensors[f"M{k}"] = A, M
    loss = loss + (lg * A).mean() + (mk * M).mean()
loss.backward()
tensors["loss"] = loss.detach().reshape(1)


def put(prefix, module):
    for n, p in module.named_parameters():
        if p.requires_grad:
            assert p.grad is not None, n
            tensors["grad." + prefix + n.replace(".base_layer", "")] = p.grad.contiguous()


put("unet.", gen.unet)
put("feature_projections.", fpm.feature_projections)
put("sem_seg_head.", head)
os.makedirs(out, exist_ok=True)
save_file({k: v.contiguous() for k, v in tensors.items()}, os.path.join(out, "ras_grad.safetensors"),
          {"prompts": "\n".join(PROMPTS), "preds": str(len(preds))})
print("wrote", os.path.join(out, "ras_grad.safetensors"), "loss", float(loss), "grads",
      sum(1 for k in tensors if k.startswith("grad.")))
