#!/usr/bin/env python3
"""PyTorch-eager timing of one rass-train scr step, the reference side of the
SCR benchmark line (the C++ side: tests/train/test_scr_stage.cpp prints its
s/step for the same step).

    /tmp/loravenv/bin/python scripts/bench_train_scr_torch.py [--model tests/fixtures/nn/sd_tiny]
        [--crop 64] [--batch 2] [--steps 6] [--threads 2] [--no-scl] [--json]

The step (diffusers 0.25 + peft 0.7, fp32, CPU), as rass-train scr computes it:
OSEDiff's three LoRA adapters (rank 4, alpha 8, OSEDiff's targets) and conv_in
trainable; z = (mean + std * noise) * scaling_factor of the frozen VAE encoder
(no grad); eps = UNet(z, t = 1, text embedding); x0 = z - eps;
x_hat = vae.decode(x0 / sf).clamp(-1, 1); loss = MSE + 2 * LPIPS-VGG (the
`lpips` package with random weights at torchvision's full VGG16 width unless
--no-lpips) + 1e-3 L_region + 5e-5 L_pixel on every attn2 layer's
probabilities (recorded by an attention processor; one term per sample); then
backward, clip_grad_norm_(1.0) and AdamW.step. The data (crops, degradation)
is not part of this step: fixed random tensors. Prints the median seconds per
step over --steps after one warm-up step.
"""
import argparse
import json
import statistics
import time

import torch
import torch.nn.functional as F
from diffusers import AutoencoderKL, UNet2DConditionModel
from diffusers.models.attention_processor import AttnProcessor
from peft import LoraConfig
from transformers import CLIPTextModel

GREP = ["to_k", "to_q", "to_v", "to_out.0", "conv", "conv1", "conv2", "conv_in", "conv_shortcut", "conv_out",
        "proj_out", "proj_in", "ff.net.2", "ff.net.0.proj"]


class Recorder(AttnProcessor):
    def __init__(self, store):
        super().__init__()
        self.store = store

    def __call__(self, attn, hidden_states, encoder_hidden_states=None, attention_mask=None, temb=None, scale=1.0):
        if encoder_hidden_states is None:
            return super().__call__(attn, hidden_states, encoder_hidden_states, attention_mask, temb, scale)
        q = attn.head_to_batch_dim(attn.to_q(hidden_states))
        k = attn.head_to_batch_dim(attn.to_k(encoder_hidden_states))
        v = attn.head_to_batch_dim(attn.to_v(encoder_hidden_states))
        p = attn.get_attention_scores(q, k, None)
        self.store.append(p)
        h = attn.batch_to_head_dim(torch.bmm(p, v))
        return attn.to_out[1](attn.to_out[0](h)) / attn.rescale_output_factor


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="tests/fixtures/nn/sd_tiny")
    ap.add_argument("--crop", type=int, default=64)
    ap.add_argument("--batch", type=int, default=2)
    ap.add_argument("--steps", type=int, default=6)
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--no-scl", action="store_true")
    ap.add_argument("--no-lpips", action="store_true")
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    unet = UNet2DConditionModel.from_pretrained(a.model, subfolder="unet")
    vae = AutoencoderKL.from_pretrained(a.model, subfolder="vae")
    text = CLIPTextModel.from_pretrained(a.model, subfolder="text_encoder")
    for m in (unet, vae, text):
        m.requires_grad_(False)
    enc, dec, oth = [], [], []
    for n, _ in unet.named_parameters():
        if "bias" in n or "norm" in n:
            continue
        for pat in GREP:
            if pat in n:
                (enc if ("down_blocks" in n or "conv_in" in n) else dec if ("up_blocks" in n or "conv_out" in n)
                 else oth).append(n.replace(".weight", ""))
                break
    for name, t in (("default_encoder", enc), ("default_decoder", dec), ("default_others", oth)):
        unet.add_adapter(LoraConfig(r=4, init_lora_weights="gaussian", target_modules=t), adapter_name=name)
    unet.set_adapter(["default_encoder", "default_decoder", "default_others"])
    params = []
    for n, p in unet.named_parameters():
        if "lora" in n or "conv_in" in n:
            p.requires_grad_(True)
            params.append(p)
    store = []
    if not a.no_scl:
        unet.set_attn_processor({n + ".processor": (Recorder(store) if n.endswith("attn2") else AttnProcessor())
                                 for n, _ in unet.named_modules() if n.endswith("attn1") or n.endswith("attn2")})
    net_lpips = None
    if not a.no_lpips:
        import lpips
        net_lpips = lpips.LPIPS(net="vgg", pretrained=False, pnet_rand=True, verbose=False).eval()
        net_lpips.requires_grad_(False)
    opt = torch.optim.AdamW(params, lr=5e-5, weight_decay=1e-2)
    B, S = a.batch, a.crop
    hq = torch.rand(B, 3, S, S) * 2 - 1
    lq = (hq + 0.2 * torch.randn(B, 3, S, S)).clamp(-1, 1)
    ids = torch.randint(0, text.config.vocab_size, (B, 77))
    mask = torch.zeros(S, S)
    mask[: S // 2] = 1
    sf = vae.config.scaling_factor

    def step():
        store.clear()
        opt.zero_grad()
        with torch.no_grad():
            d = vae.encode(lq).latent_dist
            z = (d.mean + d.std * torch.randn_like(d.mean)) * sf
            ctx = text(ids)[0]
        eps = unet(z, torch.full((B,), 1), encoder_hidden_states=ctx).sample
        x_hat = vae.decode((z - eps) / sf).sample.clamp(-1, 1)
        loss = F.mse_loss(x_hat, hq)
        if net_lpips is not None:
            loss = loss + 2 * net_lpips(x_hat, hq).mean()
        if store:
            reg = pix = 0
            for p in store:
                q = p.shape[1]
                h = int(round((q * z.shape[2] / z.shape[3]) ** 0.5))
                w = q // h
                m = (F.interpolate(mask[None, None], size=(h, w), mode="area") >= 0.5).float().view(1, -1)
                a_ = p.view(B, -1, q, p.shape[2]).mean(1)[:, :, 1]
                A = (a_ - a_.min(1, keepdim=True)[0]) / (a_.max(1, keepdim=True)[0] - a_.min(1, keepdim=True)[0] + 1e-8)
                reg = reg + (1 - (A * m).sum(1) / (A.sum(1) + 1e-8)).mean()
                pix = pix + F.binary_cross_entropy(A.clamp(1e-4, 1 - 1e-4), m.expand_as(A))
            loss = loss + 1e-3 * reg / len(store) + 5e-5 * pix / len(store)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        return loss.item()

    step()
    times = []
    for _ in range(a.steps):
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
    med = statistics.median(times)
    res = {"s_per_step": med, "steps_per_s": 1 / med, "crop": S, "batch": B, "threads": torch.get_num_threads(),
           "scl": not a.no_scl, "lpips": net_lpips is not None, "model": a.model}
    print(json.dumps(res) if a.json else f"pytorch eager scr step: {med:.4f} s/step ({1 / med:.2f} steps/s), "
          f"crop {S}, batch {B}, {torch.get_num_threads()} threads")


if __name__ == "__main__":
    main()
