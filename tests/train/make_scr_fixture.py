#!/usr/bin/env python3
"""Golden fixture of rass-train scr: the gradients of one SCR training step
computed by diffusers 0.25.1 + peft 0.7.1 (the reference implementations of
the UNet, VAE, text encoder and LoRA layers), for tests/train/test_scr_stage.cpp.

    /tmp/loravenv/bin/python tests/train/make_scr_fixture.py tests/fixtures/train

The model is the tiny SD folder tests/fixtures/nn/sd_tiny (made by
tests/nn/make_restore_fixture.py). LoRA as OSEDiff's initialize_unet: the
three adapters default_encoder / default_decoder / default_others over
OSEDiff's grep list (rank 4, lora_alpha left at PEFT's default 8, all three
active), conv_in trained fully. The initial values are random here (B
non-zero, so the gradients of A are not trivially zero) and are written to
the fixture; the C++ test copies them into its parameters.

The step: two samples (LQ, HQ [3, 64, 64] in [-1, 1]), the keyed latent draw
replaced by a given N(0, 1) noise, z = (mean + std * noise) * scaling_factor,
eps = UNet(z, t = 1, text_encoder(ids)), x0 = z - eps (the paper's residual
form), x_hat = vae.decode(x0 / scaling_factor).clamp(-1, 1),
  loss = w_mse * MSE(x_hat, HQ) + lambda_region * L_region + lambda_pixel * L_pixel
with the SCL terms computed here from the attention probabilities diffusers
itself computes (an attention processor that records attn2's
get_attention_scores output), by the formula of lib/rass/train/scl_loss.hpp
written independently below. The lambdas are larger than the paper's (1e-3,
5e-5) so that the SCL part of the gradient is not lost under the MSE part's
rounding. LPIPS-VGG is the official `lpips` package (0.1.4) with the tiny
narrow-VGG weights of tests/fixtures/iqa/lpips_vgg.safetensors (rebuilt with
tests/nn/make_iqa_lpips_fixture.py's narrow()), on [-1, 1] images as OSEDiff
calls it, weight 2.

Writes <out>/scr_grad.safetensors:
  init.<name>   initial trainable tensors under this project's names
                (conv_in.weight / conv_in.bias for PEFT's conv_in.base_layer.*)
  lq, hq [2, 3, 64, 64], noise [2, 4, h, w], ids [2, 77] (int64), masks.<b>.<t> [64, 64]
  grad.<name>   d loss / d tensor after one backward
  loss, mse, lpips, region, pixel (scalars)
  ddpm.grad.<name>, ddpm.loss, ...  the same step in OSEDiff's form (t = 999,
                x0 by DDPMScheduler.step with one inference step)
metadata: the settings of both runs (json) and the token positions of each target.
"""
import json
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F

import diffusers
import peft
from diffusers import AutoencoderKL, DDPMScheduler, UNet2DConditionModel
from diffusers.models.attention_processor import AttnProcessor
from peft import LoraConfig
from transformers import CLIPTextModel, CLIPTokenizer

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "nn"))
import st_write  # noqa: E402
import lpips  # noqa: E402
import make_iqa_lpips_fixture  # noqa: E402
from safetensors.torch import load_file  # noqa: E402

assert diffusers.__version__ == "0.25.1" and peft.__version__ == "0.7.1", (diffusers.__version__, peft.__version__)
torch.manual_seed(0)
torch.set_grad_enabled(True)
out = sys.argv[1]
here = os.path.dirname(os.path.abspath(__file__))
sd = os.path.join(here, "..", "fixtures", "nn", "sd_tiny")

SETTINGS = {"timestep": 1, "formula": "residual", "w_mse": 1.0, "w_lpips": 2.0, "lambda_region": 0.5,
            "lambda_pixel": 0.05}
# Target token positions per sample (terms of several tokens use all of them).
POSITIONS = [[[1], [2, 3]], [[1]]]

unet = UNet2DConditionModel.from_pretrained(os.path.join(sd, "unet"))
vae = AutoencoderKL.from_pretrained(os.path.join(sd, "vae"))
text = CLIPTextModel.from_pretrained(os.path.join(sd, "text_encoder"))
tok = CLIPTokenizer.from_pretrained(os.path.join(sd, "tokenizer"))
sched = DDPMScheduler.from_pretrained(os.path.join(sd, "scheduler"))
assert not sched.config.clip_sample
vae.requires_grad_(False)
text.requires_grad_(False)
unet.requires_grad_(False)

# OSEDiff's grouping (train_osediff.py initialize_unet).
grep = ["to_k", "to_q", "to_v", "to_out.0", "conv", "conv1", "conv2", "conv_in", "conv_shortcut", "conv_out",
        "proj_out", "proj_in", "ff.net.2", "ff.net.0.proj"]
enc, dec, oth = [], [], []
for n, _ in unet.named_parameters():
    if "bias" in n or "norm" in n:
        continue
    for pat in grep:
        if pat in n and ("down_blocks" in n or "conv_in" in n):
            enc.append(n.replace(".weight", ""))
            break
        elif pat in n and ("up_blocks" in n or "conv_out" in n):
            dec.append(n.replace(".weight", ""))
            break
        elif pat in n:
            oth.append(n.replace(".weight", ""))
            break
for name, targets in (("default_encoder", enc), ("default_decoder", dec), ("default_others", oth)):
    unet.add_adapter(LoraConfig(r=4, init_lora_weights="gaussian", target_modules=targets), adapter_name=name)
unet.set_adapter(["default_encoder", "default_decoder", "default_others"])
trainable = {}
for n, p in unet.named_parameters():
    if "lora" in n or "conv_in" in n:
        p.requires_grad_(True)
        trainable[n.replace(".base_layer", "")] = p
with torch.no_grad():
    for n, p in trainable.items():
        if "lora_B" in n:
            p.normal_(0, 0.1)
        elif "lora_A" not in n:  # conv_in, "trained" away from the SD weights
            p.add_(torch.randn_like(p) * 0.05)
print("targets: encoder", len(enc), "decoder", len(dec), "others", len(oth), "trainable", len(trainable))


class Recorder(AttnProcessor):
    """diffusers' AttnProcessor (its own get_attention_scores), recording attn2's probabilities."""

    def __init__(self, path, store):
        super().__init__()
        self.path, self.store = path, store

    def __call__(self, attn, hidden_states, encoder_hidden_states=None, attention_mask=None, temb=None, scale=1.0):
        if encoder_hidden_states is None:
            return super().__call__(attn, hidden_states, encoder_hidden_states, attention_mask, temb, scale)
        # AttnProcessor.__call__ of diffusers 0.25.1 for the 3-D cross-attention case, probabilities kept.
        residual = hidden_states
        batch_size, sequence_length, _ = encoder_hidden_states.shape
        query = attn.head_to_batch_dim(attn.to_q(hidden_states))
        key = attn.head_to_batch_dim(attn.to_k(encoder_hidden_states))
        value = attn.head_to_batch_dim(attn.to_v(encoder_hidden_states))
        probs = attn.get_attention_scores(query, key, None)
        self.store.append((self.path, probs))
        h = attn.batch_to_head_dim(torch.bmm(probs, value))
        h = attn.to_out[1](attn.to_out[0](h))
        if attn.residual_connection:
            h = h + residual
        return h / attn.rescale_output_factor


store = []
procs = {}
for name, mod in unet.named_modules():
    if name.endswith("attn1") or name.endswith("attn2"):
        procs[name + ".processor"] = Recorder(name, store) if name.endswith("attn2") else AttnProcessor()
unet.set_attn_processor(procs)

g = torch.Generator().manual_seed(1)
S = 64
hq = torch.rand(2, 3, S, S, generator=g) * 2 - 1
hq = F.avg_pool2d(F.pad(hq, (1, 1, 1, 1), mode="replicate"), 3, 1)  # some spatial structure
lq = (hq + 0.2 * torch.randn(2, 3, S, S, generator=g)).clamp(-1, 1)
prompts = ["wall building sky tree", "sky lake"]
ids = torch.stack([tok(p, padding="max_length", max_length=77, truncation=True, return_tensors="pt").input_ids[0]
                   for p in prompts])
masks = [[torch.zeros(S, S), torch.zeros(S, S)], [torch.zeros(S, S)]]
masks[0][0][:30, :] = 1
masks[0][1][20:60, 10:41] = 1
yy, xx = torch.meshgrid(torch.arange(S), torch.arange(S), indexing="ij")
masks[1][0][((yy - 40) ** 2 + (xx - 24) ** 2) < 18 ** 2] = 1

sf = vae.config.scaling_factor
with torch.no_grad():
    dist = vae.encode(lq).latent_dist
    noise = torch.randn(dist.mean.shape, generator=g)
    z = (dist.mean + dist.std * noise) * sf
    ctx = text(ids)[0]
net_lpips = make_iqa_lpips_fixture.narrow(lpips.LPIPS(net="vgg", pretrained=False, pnet_rand=True, verbose=False),
                                          "vgg", torch.Generator().manual_seed(0))
missing = net_lpips.load_state_dict(load_file(os.path.join(here, "..", "fixtures", "iqa", "lpips_vgg.safetensors")),
                                    strict=False).missing_keys
assert all(k.startswith("lins.") for k in missing), missing  # lins.k is lin<k> (one module, two names)
net_lpips.requires_grad_(False)


def one_step(SETTINGS):
    """One step with these settings: the loss terms and the gradients (grads cleared first)."""
    store.clear()
    for p in trainable.values():
        p.grad = None
    t = torch.full((2,), SETTINGS["timestep"])
    eps = unet(z, t, encoder_hidden_states=ctx).sample
    if SETTINGS["formula"] == "ddpm":  # DDPMScheduler.step with one inference step (clip_sample false here)
        a = sched.alphas_cumprod[SETTINGS["timestep"]]
        x0 = (z - (1 - a) ** 0.5 * eps) / a ** 0.5
    else:
        x0 = z - eps
    x_hat = vae.decode(x0 / sf).sample.clamp(-1, 1)
    mse = F.mse_loss(x_hat, hq)
    lp = net_lpips(x_hat, hq).mean()

    # SCL from diffusers' own probabilities (the formula of scl_loss.hpp).
    lat_h, lat_w = z.shape[2], z.shape[3]
    levels = []
    h, w = lat_h, lat_w
    while True:
        levels.append((h, w))
        if h == 1 and w == 1:
            break
        h, w = (h + 1) // 2, (w + 1) // 2
    reg_sum = [0.0, 0.0]
    pix_sum = [0.0, 0.0]
    count = [0, 0]
    for path, probs in store:
        B = 2
        heads = probs.shape[0] // B
        q = probs.shape[1]
        hh, ww = next((a, b) for a, b in levels if a * b == q)
        mean = probs.view(B, heads, q, -1).mean(1)
        for b in range(B):
            for ti, pos in enumerate(POSITIONS[b]):
                m = masks[b][ti]
                M = (F.interpolate(m[None, None], size=(hh, ww), mode="area") >= 0.5).float().view(-1)
                for p in pos:
                    a = mean[b, :, p]
                    A = (a - a.min()) / (a.max() - a.min() + 1e-8)
                    reg = 1 - (A * M).sum() / (A.sum() + 1e-8)
                    pix = F.binary_cross_entropy(A.clamp(1e-4, 1 - 1e-4), M)
                    reg_sum[b] = reg_sum[b] + reg
                    pix_sum[b] = pix_sum[b] + pix
                    count[b] += 1
    region = sum(reg_sum[b] / count[b] for b in range(2)) / 2
    pixel = sum(pix_sum[b] / count[b] for b in range(2)) / 2
    loss = SETTINGS["w_mse"] * mse + SETTINGS["w_lpips"] * lp + SETTINGS["lambda_region"] * region + SETTINGS["lambda_pixel"] * pixel
    loss.backward()
    print("attn2 layers", sorted({p for p, _ in store}), "loss", loss.item(), "mse", mse.item(), "region", region.item(),
          "pixel", pixel.item(), "lpips", lp.item())
    return {"loss": loss, "mse": mse, "lpips": lp, "region": region, "pixel": pixel,
            "grads": {n: p.grad.detach().clone() for n, p in trainable.items()}}


RUNS = {"": SETTINGS, "ddpm.": dict(SETTINGS, timestep=999, formula="ddpm")}
results = {prefix: one_step(st) for prefix, st in RUNS.items()}
init_trainable = {}
# The initial values: parameters are unchanged by backward.
tensors = {}
for n, p in trainable.items():
    tensors["init." + n] = p.detach().numpy().astype(np.float32)
for prefix, r in results.items():
    for n, gr in r["grads"].items():
        tensors[prefix + "grad." + n] = gr.numpy().astype(np.float32)
    for k in ("loss", "mse", "lpips", "region", "pixel"):
        tensors[prefix + k] = np.array(r[k].item(), np.float32)
tensors.update({"lq": lq.numpy(), "hq": hq.numpy(), "noise": noise.numpy(), "ids": ids.numpy().astype(np.int64)})
for b in range(2):
    for ti in range(len(POSITIONS[b])):
        tensors[f"masks.{b}.{ti}"] = masks[b][ti].numpy()
os.makedirs(out, exist_ok=True)
st_write.save(os.path.join(out, "scr_grad.safetensors"), tensors,
              {"settings": json.dumps(SETTINGS), "settings_ddpm": json.dumps(RUNS["ddpm."]),
               "positions": json.dumps(POSITIONS)})
print("wrote", os.path.join(out, "scr_grad.safetensors"), len(tensors), "tensors")
