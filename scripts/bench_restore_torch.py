#!/usr/bin/env python3
"""PyTorch-eager timing of one OSEDiff-style restore, the reference side of
scripts/bench-restore.sh.

    python3 scripts/bench_restore_torch.py --model DIR [--dtype fp32 bf16] [--threads N]
        [--size 512] [--batch 1] [--device cpu|cuda] [--tile] [--runs 2] [--warmup 1] [--json]

DIR is a diffusers Stable Diffusion folder (rass-model init --preset
sd21-base writes one with random weights). Per image, under
torch.inference_mode() on the CPU, the computation of rass-restore --method
osediff --vae-mode (the latent mean, so both sides do the same work):

    prompt "" -> CLIPTokenizer (77 tokens) -> CLIPTextModel
    x in [-1, 1] (a fixed random 512x512 image) -> vae.encode(x).latent_dist.mean * scaling_factor
    eps = unet(z, 999, prompt embedding)
    x0 = DDPMScheduler.step(eps, 999, z) after set_timesteps(1) = (z - sqrt(1 - a) eps) / sqrt(a)
         (written out: diffusers after 0.25 refuses that step)
    vae.decode(x0 / scaling_factor).clamp(-1, 1)

Models are loaded once (torch_dtype = the dtype asked) and not timed; each
timed run is the whole chain. Prints seconds per image (median of --runs)
and the time of each part. Needs torch, diffusers and transformers.

--batch N runs N images per call (scripts/bench-gpu.sh: the GPU reference of
rass-restore --batch N). --device cuda synchronises before each clock reading
and reports the peak memory of PyTorch's allocator. --tile runs the UNet on
96/32 latent tiles with OSEDiff's Gaussian weights (as rass-restore --tile)
and the VAE through diffusers' own tiling (vae.enable_tiling(): tiles blended
at their edges, GroupNorm per tile; rass-restore's tiles share global
GroupNorm statistics, so the two do the same convolutions, not the same sums).
Attention is diffusers' default on torch 2.x (scaled_dot_product_attention).

--trace FILE profiles one more call (after the timed ones) and writes it as
a Chrome trace, the reference side of rass-restore under RASS_TRACE=FILE.
"""
import argparse
import json
import math
import statistics
import sys
import time

import torch
from diffusers import AutoencoderKL, DDPMScheduler, UNet2DConditionModel
from transformers import CLIPTextModel, CLIPTokenizer

from torch_trace import traced

DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


def load(model, dtype):
    dt = DTYPES[dtype]
    return {
        "tokenizer": CLIPTokenizer.from_pretrained(model, subfolder="tokenizer"),
        "text_encoder": CLIPTextModel.from_pretrained(model, subfolder="text_encoder", torch_dtype=dt).eval(),
        "vae": AutoencoderKL.from_pretrained(model, subfolder="vae", torch_dtype=dt).eval(),
        "unet": UNet2DConditionModel.from_pretrained(model, subfolder="unet", torch_dtype=dt).eval(),
        "scheduler": DDPMScheduler.from_pretrained(model, subfolder="scheduler"),
    }


def clock(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter()


def gaussian_weights(tile):
    """OSEDiff's _gaussian_weights for a square latent tile (variance 0.01)."""
    var = 0.01
    mid = (tile - 1) / 2
    xs = [math.exp(-((x - mid) ** 2) / (tile * tile) / (2 * var)) / math.sqrt(2 * math.pi * var) for x in range(tile)]
    mid = tile / 2
    ys = [math.exp(-((y - mid) ** 2) / (tile * tile) / (2 * var)) / math.sqrt(2 * math.pi * var) for y in range(tile)]
    return torch.tensor([[y * x for x in xs] for y in ys])


def tile_offsets(length, tile, overlap):
    """OSEDiff's grid: a tile every tile - overlap, the last one moved back to the edge."""
    n, cur = 1, tile
    while cur < length:
        cur = max(n * tile - overlap * n, 0) + tile
        n += 1
    return [length - tile if i == n - 1 else max(i * tile - overlap * i, 0) for i in range(n)]


def tiled_unet(unet, z, t, ctx, tile=96, overlap=32):
    h, w = z.shape[-2:]
    if h * w <= tile * tile:
        return unet(z, t, encoder_hidden_states=ctx).sample
    tile = min(tile, h, w)
    weights = gaussian_weights(tile).to(z.device, torch.float32)
    out = torch.zeros(z.shape, device=z.device, dtype=torch.float32)
    norm = torch.zeros((1, 1, h, w), device=z.device, dtype=torch.float32)
    for y in tile_offsets(h, tile, overlap):
        for x in tile_offsets(w, tile, overlap):
            eps = unet(z[..., y:y + tile, x:x + tile], t, encoder_hidden_states=ctx).sample
            out[..., y:y + tile, x:x + tile] += eps.float() * weights
            norm[..., y:y + tile, x:x + tile] += weights
    return (out / norm).to(z.dtype)


def restore(m, x, dtype, tile=False):
    """One batch; returns the output and the seconds of each part."""
    dt = DTYPES[dtype]
    dev = x.device
    parts = {}
    t0 = clock(dev)
    ids = m["tokenizer"]([""] * x.shape[0], max_length=m["tokenizer"].model_max_length, padding="max_length",
                         truncation=True, return_tensors="pt").input_ids.to(dev)
    ctx = m["text_encoder"](ids)[0]
    t1 = clock(dev)
    parts["text"] = t1 - t0
    z = m["vae"].encode(x.to(dt)).latent_dist.mean * m["vae"].config.scaling_factor
    t2 = clock(dev)
    parts["encode"] = t2 - t1
    t = torch.tensor([999], device=dev)
    eps = tiled_unet(m["unet"], z, t, ctx) if tile else m["unet"](z, t, encoder_hidden_states=ctx).sample
    # DDPMScheduler.step(eps, 999, z) after set_timesteps(1), as diffusers 0.25 (OSEDiff's) computes it:
    # the previous timestep is -1, so prev_sample is x0 (the variance term is 0). Newer diffusers
    # refuse a timestep outside set_timesteps' list, so the formula is written out.
    a = m["scheduler"].alphas_cumprod[999].to(dev)
    x0 = ((z - (1 - a).sqrt() * eps) / a.sqrt()).to(z.dtype)
    t3 = clock(dev)
    parts["unet"] = t3 - t2
    out = m["vae"].decode(x0 / m["vae"].config.scaling_factor).sample.clamp(-1, 1)
    parts["decode"] = clock(dev) - t3
    return out, parts


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", required=True, help="diffusers folder")
    ap.add_argument("--dtype", nargs="+", default=["fp32", "bf16"], choices=sorted(DTYPES))
    ap.add_argument("--threads", type=int, default=0, help="intra-op threads (0 = torch's default)")
    ap.add_argument("--size", type=int, default=512, help="image side in pixels")
    ap.add_argument("--runs", type=int, default=2, help="timed runs (the median is reported)")
    ap.add_argument("--warmup", type=int, default=1, help="untimed runs first")
    ap.add_argument("--batch", type=int, default=1, help="images per call")
    ap.add_argument("--device", default="cpu", help="cpu or cuda[:N]")
    ap.add_argument("--tile", action="store_true", help="UNet over 96/32 latent tiles, diffusers' VAE tiling")
    ap.add_argument("--json", action="store_true", help="one JSON line per dtype")
    ap.add_argument("--trace", metavar="FILE", help="after the timed runs, one more under torch.profiler, "
                    "written to FILE as a Chrome trace (scripts/trace_summary.py; one --dtype)")
    args = ap.parse_args()
    if args.batch < 1 or args.runs < 1 or args.warmup < 0:
        ap.error("--batch and --runs must be >= 1, --warmup >= 0")
    if args.trace and len(args.dtype) != 1:
        ap.error("--trace writes one file: give one --dtype")
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    dev = torch.device(args.device)
    gen = torch.Generator().manual_seed(0)
    x = (torch.rand(args.batch, 3, args.size, args.size, generator=gen) * 2 - 1).to(dev)
    for dtype in args.dtype:
        t0 = time.perf_counter()
        m = load(args.model, dtype)
        for k in ("text_encoder", "vae", "unet"):
            m[k].to(dev)
        if args.tile:
            m["vae"].enable_tiling()
        load_s = time.perf_counter() - t0
        if dev.type == "cuda":
            torch.cuda.reset_peak_memory_stats(dev)
        times, parts = [], []
        with torch.inference_mode():
            for i in range(args.warmup + args.runs):
                t = clock(dev)
                out, p = restore(m, x, dtype, args.tile)
                if i >= args.warmup:
                    times.append(clock(dev) - t)
                    parts.append(p)
            if args.trace:
                traced(args.trace, dev, lambda: restore(m, x, dtype, args.tile))
        if not torch.isfinite(out.float()).all():
            print(f"bench_restore_torch: warning: {dtype} output is not finite", file=sys.stderr)
        per_call = statistics.median(times)
        res = {"side": "torch", "dtype": dtype, "threads": torch.get_num_threads(), "size": args.size,
               "batch": args.batch, "device": str(dev), "tile": args.tile,
               "seconds_per_image": per_call / args.batch, "images_per_second": args.batch / per_call,
               "runs": times, "load_seconds": load_s,
               "parts": {k: statistics.median(p[k] for p in parts) for k in parts[0]},
               "torch": torch.__version__}
        if dev.type == "cuda":
            res["peak_allocated_bytes"] = torch.cuda.max_memory_allocated(dev)
            res["peak_reserved_bytes"] = torch.cuda.max_memory_reserved(dev)
            res["gpu"] = torch.cuda.get_device_name(dev)
        if args.json:
            print(json.dumps(res))
        else:
            pp = ", ".join(f"{k} {v:.3f}" for k, v in res["parts"].items())
            print(f"torch {dtype} batch {args.batch}: {res['seconds_per_image']:.3f} s/image, "
                  f"{res['images_per_second']:.2f} images/s ({pp} per call; {dev}, {res['threads']} threads, "
                  f"torch {torch.__version__}, load {load_s:.1f} s)")
        del m
        if dev.type == "cuda":
            torch.cuda.empty_cache()


if __name__ == "__main__":
    main()
