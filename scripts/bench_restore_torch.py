#!/usr/bin/env python3
"""PyTorch-eager timing of one OSEDiff-style restore, the reference side of
scripts/bench-restore.sh.

    python3 scripts/bench_restore_torch.py --model DIR [--dtype fp32 bf16] [--threads N]
        [--size 512] [--runs 2] [--warmup 1] [--json]

DIR is a diffusers Stable Diffusion folder (rass-model init --preset
sd21-base writes one with random weights). Per image, under
torch.inference_mode() on the CPU, the computation of rass-restore --method
osediff --vae-mode (the latent mean, so both sides do the same work):

    prompt "" -> CLIPTokenizer (77 tokens) -> CLIPTextModel
    x in [-1, 1] (a fixed random 512x512 image) -> vae.encode(x).latent_dist.mean * scaling_factor
    eps = unet(z, 999, prompt embedding)
    x0 = DDPMScheduler.step(eps, 999, z) after set_timesteps(1) = (z - sqrt(1 - a) eps) / sqrt(a)
    vae.decode(x0 / scaling_factor).clamp(-1, 1)

Models are loaded once (torch_dtype = the dtype asked) and not timed; each
timed run is the whole chain. Prints seconds per image (median of --runs)
and the time of each part. Needs torch, diffusers and transformers.
"""
import argparse
import json
import statistics
import sys
import time

import torch
from diffusers import AutoencoderKL, DDPMScheduler, UNet2DConditionModel
from transformers import CLIPTextModel, CLIPTokenizer

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


def restore(m, x, dtype):
    """One image; returns the output and the seconds of each part."""
    dt = DTYPES[dtype]
    parts = {}
    t0 = time.perf_counter()
    ids = m["tokenizer"]("", max_length=m["tokenizer"].model_max_length, padding="max_length", truncation=True,
                         return_tensors="pt").input_ids
    ctx = m["text_encoder"](ids)[0]
    t1 = time.perf_counter()
    parts["text"] = t1 - t0
    z = m["vae"].encode(x.to(dt)).latent_dist.mean * m["vae"].config.scaling_factor
    t2 = time.perf_counter()
    parts["encode"] = t2 - t1
    sched = m["scheduler"]
    sched.set_timesteps(1)
    t = torch.tensor([999])
    eps = m["unet"](z, t, encoder_hidden_states=ctx).sample
    x0 = sched.step(eps, 999, z, return_dict=True).prev_sample
    t3 = time.perf_counter()
    parts["unet"] = t3 - t2
    out = m["vae"].decode(x0 / m["vae"].config.scaling_factor).sample.clamp(-1, 1)
    parts["decode"] = time.perf_counter() - t3
    return out, parts


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", required=True, help="diffusers folder")
    ap.add_argument("--dtype", nargs="+", default=["fp32", "bf16"], choices=sorted(DTYPES))
    ap.add_argument("--threads", type=int, default=0, help="intra-op threads (0 = torch's default)")
    ap.add_argument("--size", type=int, default=512, help="image side in pixels")
    ap.add_argument("--runs", type=int, default=2, help="timed runs (the median is reported)")
    ap.add_argument("--warmup", type=int, default=1, help="untimed runs first")
    ap.add_argument("--json", action="store_true", help="one JSON line per dtype")
    args = ap.parse_args()
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(1, 3, args.size, args.size, generator=gen) * 2 - 1
    for dtype in args.dtype:
        t0 = time.perf_counter()
        m = load(args.model, dtype)
        load_s = time.perf_counter() - t0
        times, parts = [], []
        with torch.inference_mode():
            for i in range(args.warmup + args.runs):
                t = time.perf_counter()
                out, p = restore(m, x, dtype)
                if i >= args.warmup:
                    times.append(time.perf_counter() - t)
                    parts.append(p)
        if not torch.isfinite(out.float()).all():
            print(f"bench_restore_torch: warning: {dtype} output is not finite", file=sys.stderr)
        res = {"side": "torch", "dtype": dtype, "threads": torch.get_num_threads(), "size": args.size,
               "seconds_per_image": statistics.median(times), "runs": times, "load_seconds": load_s,
               "parts": {k: statistics.median(p[k] for p in parts) for k in parts[0]},
               "torch": torch.__version__}
        if args.json:
            print(json.dumps(res))
        else:
            pp = ", ".join(f"{k} {v:.2f}" for k, v in res["parts"].items())
            print(f"torch {dtype}: {res['seconds_per_image']:.2f} s/image ({pp}; {res['threads']} threads, "
                  f"torch {torch.__version__}, load {load_s:.1f} s)")
        del m


if __name__ == "__main__":
    main()
