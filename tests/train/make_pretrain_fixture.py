#!/usr/bin/env python3
"""Golden fixture of rass-train vae and unet: the loss and the gradient of
every trainable tensor after one step, computed by diffusers 0.25.1 (the
reference AutoencoderKL, UNet2DConditionModel, DDPMScheduler.add_noise) and
transformers' CLIPTextModel/CLIPTokenizer, for tests/train/test_pretrain.cpp.

    /tmp/loravenv/bin/python tests/train/make_pretrain_fixture.py tests/fixtures/train

The model is the tiny SD folder tests/fixtures/nn/sd_tiny.

vae step (latent diffusion's LPIPSWithDiscriminator without GAN or LPIPS,
logvar 0): two images x [2, 3, 64, 64] in [-1, 1], the posterior draw given
as noise [2, 4, 8, 8], z = mean + std * noise, x_hat = vae.decode(z),
  loss = mean_b( sum |x - x_hat| + kl_weight * posterior.kl() )
with kl_weight 1e-2 (larger than SD's 1e-6 so that the KL part of the
gradient shows above the reconstruction part's rounding).

unet step (diffusers examples/text_to_image/train_text_to_image.py): the
same images, z = (mean + std * vae_noise) * scaling_factor, timesteps
[10, 700], noisy = DDPMScheduler.add_noise(z, noise, t) with the folder's
scheduler config, prompts ["a sky above a wall", ""] (the second as dropped
by classifier-free dropout), loss = F.mse_loss(unet(noisy, t, c), noise).

Writes <out>/pretrain_grad.safetensors:
  x, vae.noise, unet.noise, unet.vae_noise, unet.t (int64)
  vae.loss, vae.grad.<name>, unet.loss, unet.grad.<name>
metadata: the prompts (json).
"""
import json
import os
import sys

import torch
import torch.nn.functional as F
from diffusers import AutoencoderKL, DDPMScheduler, UNet2DConditionModel
from transformers import CLIPTextModel, CLIPTokenizer

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "nn"))
import st_write  # noqa: E402

here = os.path.dirname(os.path.abspath(__file__))
sd = os.path.join(here, "..", "fixtures", "nn", "sd_tiny")
out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(here, "..", "fixtures", "train")
torch.manual_seed(20261202)

x = torch.rand(2, 3, 64, 64) * 2 - 1
tensors = {"x": x}

vae = AutoencoderKL.from_pretrained(os.path.join(sd, "vae")).float()
vae.train()
noise = torch.randn(2, 4, 8, 8)
post = vae.encode(x).latent_dist
z = post.mean + post.std * noise
x_hat = vae.decode(z).sample
kl_weight = 1e-2
loss = ((x - x_hat).abs().sum(dim=[1, 2, 3]) + kl_weight * post.kl()).mean()
loss.backward()
tensors["vae.noise"] = noise
tensors["vae.loss"] = loss.detach().reshape(())
for n, p in vae.named_parameters():
    tensors["vae.grad." + n] = p.grad.detach().clone()

vae.zero_grad()
vae.requires_grad_(False)
unet = UNet2DConditionModel.from_pretrained(os.path.join(sd, "unet")).float()
text = CLIPTextModel.from_pretrained(os.path.join(sd, "text_encoder")).float()
tok = CLIPTokenizer.from_pretrained(os.path.join(sd, "tokenizer"))
with open(os.path.join(sd, "scheduler", "scheduler_config.json")) as f:
    sched = DDPMScheduler.from_config(json.load(f))
prompts = ["a sky above a wall", ""]
ids = tok(prompts, padding="max_length", max_length=tok.model_max_length, truncation=True, return_tensors="pt").input_ids
with torch.no_grad():
    c = text(ids)[0]
    post = vae.encode(x).latent_dist
    vae_noise = torch.randn(2, 4, 8, 8)
    z = (post.mean + post.std * vae_noise) * vae.config.scaling_factor
eps = torch.randn(2, 4, 8, 8)
t = torch.tensor([10, 700], dtype=torch.long)
noisy = sched.add_noise(z, eps, t)
unet.train()
pred = unet(noisy, t, c).sample
loss = F.mse_loss(pred.float(), eps.float(), reduction="mean")
loss.backward()
tensors["unet.noise"] = eps
tensors["unet.vae_noise"] = vae_noise
tensors["unet.t"] = t
tensors["unet.loss"] = loss.detach().reshape(())
for n, p in unet.named_parameters():
    tensors["unet.grad." + n] = p.grad.detach().clone()

os.makedirs(out, exist_ok=True)
st_write.save(os.path.join(out, "pretrain_grad.safetensors"), tensors,
              {"prompts": json.dumps(prompts), "kl_weight": str(kl_weight)})
print("vae loss", tensors["vae.loss"].item(), "unet loss", tensors["unet.loss"].item())
