#!/usr/bin/env python3
"""PyTorch-eager timing of one RAS segmentation, the reference side of
scripts/bench-segment.sh; also writes the random projection + head weights
both sides use.

    python3 scripts/bench_segment_torch.py --model DIR [--make-head] [--dtype fp32|bf16]
        [--threads N] [--size 512] [--batch 1] [--device cpu|cuda] [--runs 2] [--warmup 1] [--json]

DIR is a segmentation model folder whose unet/, vae/, text_encoder/ and
tokenizer/ are diffusers / transformers folders (bench-segment.sh links SD
2.1-base-sized random ones from rass-model init). --make-head writes
DIR/seg_head.safetensors (the RASS projection, 6 taps -> 512, and the released
Mask2Former head: 150 classes, 100 queries, 6 deformable encoder layers, 9
decoder layers, random weights) and DIR/segment.json, then exits.

The head is Mask2Former's own modules (tests/nn/mask2former_reference.py, with
MASK2FORMER_SRC a checkout of facebookresearch/Mask2Former); the projection is
detectron2's BottleneckBlock as tests/nn/rass_reference.py writes it. Per image
(one 512x512 window, as released at 512), under torch.inference_mode() on the
CPU: prompt "" -> CLIP text encoder; x in [-1, 1] -> vae.encode, taps at
encoder.down_blocks[1], [3] (forward hooks), latent mean * scaling factor;
unet(z, 1, prompt), taps at up_blocks[0..3]; nearest resize + projection,
equal strides summed; head; masks bilinear to 512, semantic inference, argmax.
Models load once and are not timed. Prints seconds per image (median of
--runs) and the time of each part.

--batch N runs N images per call (the GPU reference of rass-segment --batch
N, scripts/bench-gpu.sh); --device cuda synchronises before each clock
reading and reports the peak memory of PyTorch's allocator. Without the
compiled MultiScaleDeformableAttention extension, Mask2Former's deformable
attention takes its PyTorch-ops path (grid_sample) on the GPU too. With
--dtype bf16 the head runs under torch.autocast (its pixel decoder in
float32, as Mask2Former's code decides; rass-segment runs all of it in bf16).
--trace FILE profiles one more call (after the timed ones) as a Chrome trace,
the reference side of rass-segment under RASS_TRACE=FILE.
"""
import argparse
import json
import os
import statistics
import sys
import time

import torch
from torch.nn import functional as F

here = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(here, "..", "tests", "nn"))
import mask2former_reference as m2f  # noqa: E402
from torch_trace import traced  # noqa: E402  (scripts/, this file's folder)

DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16}
STRIDES = [4, 8, 32, 16, 8, 8]


def projections(dims, pdim=512):
    import rass_reference as rr
    return torch.nn.ModuleList([torch.nn.Sequential(rr.BottleneckBlock(d, pdim, bottleneck_channels=pdim // 4, norm="GN"))
                                for d in dims])


def make_head(model):
    from diffusers import AutoencoderKL, UNet2DConditionModel
    vcfg = AutoencoderKL.load_config(os.path.join(model, "vae"))
    ucfg = UNet2DConditionModel.load_config(os.path.join(model, "unet"))
    dims = [vcfg["block_out_channels"][1], vcfg["block_out_channels"][3]] + list(reversed(ucfg["block_out_channels"]))
    torch.manual_seed(0)
    proj = projections(dims)
    head = m2f.build_head({})
    from safetensors.torch import save_file
    t = {f"feature_projections.{k}": v.contiguous() for k, v in proj.state_dict().items()}
    t.update({f"sem_seg_head.{k}": v.contiguous() for k, v in head.state_dict().items()})
    save_file(t, os.path.join(model, "seg_head.safetensors"), {"format": "pt"})
    seg = {"architecture": "rass",
           "feature_projection": {"feature_dims": dims, "feature_strides": STRIDES, "projection_dim": 512},
           "head": m2f.full_config({}), "classes": "ade20k", "timestep": 1, "prompt_style": "rass",
           "input": {"min_size_test": 512, "max_size_test": 2048, "size_divisibility": 8}}
    with open(os.path.join(model, "segment.json"), "w") as f:
        json.dump(seg, f, indent=2)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--make-head", action="store_true")
    ap.add_argument("--dtype", default="fp32", choices=sorted(DTYPES))
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--runs", type=int, default=2)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--trace", metavar="FILE", help="after the timed runs, one more under torch.profiler, "
                    "written to FILE as a Chrome trace (scripts/trace_summary.py)")
    a = ap.parse_args()
    if a.batch < 1 or a.runs < 1 or a.warmup < 0:
        ap.error("--batch and --runs must be >= 1, --warmup >= 0")
    dev = torch.device(a.device)

    def clock():
        if dev.type == "cuda":
            torch.cuda.synchronize(dev)
        return time.perf_counter()
    # transformers probes for detectron2 at import: import it before the stand-ins.
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTextModel, CLIPTokenizer
    m2f.setup()
    if a.make_head:
        make_head(a.model)
        return
    torch.set_num_threads(a.threads)
    dt = DTYPES[a.dtype]
    tok = CLIPTokenizer.from_pretrained(a.model, subfolder="tokenizer")
    te = CLIPTextModel.from_pretrained(a.model, subfolder="text_encoder").eval()
    vae = AutoencoderKL.from_pretrained(a.model, subfolder="vae", torch_dtype=dt).eval()
    unet = UNet2DConditionModel.from_pretrained(a.model, subfolder="unet", torch_dtype=dt).eval()
    seg = json.load(open(os.path.join(a.model, "segment.json")))
    proj = projections(seg["feature_projection"]["feature_dims"])
    head = m2f.build_head({k: v for k, v in seg["head"].items()})
    from safetensors.torch import load_file
    w = load_file(os.path.join(a.model, "seg_head.safetensors"))
    proj.load_state_dict({k[len("feature_projections."):]: v for k, v in w.items() if k.startswith("feature_projections.")})
    head.load_state_dict({k[len("sem_seg_head."):]: v for k, v in w.items() if k.startswith("sem_seg_head.")})
    proj = proj.eval().to(dev, dt)
    # The head keeps fp32 weights and runs under autocast: Mask2Former's pixel
    # decoder turns autocast off and casts its inputs to float32 (its own
    # mixed-precision recipe), which bf16 weights would not accept.
    head = head.eval().to(dev)
    te.to(dev)
    vae.to(dev)
    unet.to(dev)
    taps = []
    for b in (vae.encoder.down_blocks[1], vae.encoder.down_blocks[3]):
        b.register_forward_hook(lambda m, i, o: taps.append(o))
    up = []
    for b in unet.up_blocks:
        b.register_forward_hook(lambda m, i, o: up.append(o))
    g = torch.Generator().manual_seed(0)
    x = (torch.rand(a.batch, 3, a.size, a.size, generator=g) * 2 - 1).to(dev)
    parts = {}

    def run():
        taps.clear()
        up.clear()
        t0 = clock()
        ids = tok([""] * a.batch, max_length=77, padding="max_length", truncation=True, return_tensors="pt").input_ids
        ctx = te(ids.to(dev))[0]
        t1 = clock()
        z = vae.encode(x.to(dt)).latent_dist.mean * vae.config.scaling_factor
        t2 = clock()
        unet(z, torch.tensor([1], device=dev), encoder_hidden_states=ctx.to(dt))
        t3 = clock()
        feats = taps + up
        out = {}
        for i, f in enumerate(feats):
            s = STRIDES[i]
            p = proj[i](F.interpolate(f, size=(a.size // s, a.size // s)))
            name = f"res{s.bit_length() - 1}"
            out[name] = out[name] + p if name in out else p
        t4 = clock()
        with torch.autocast(dev.type, dtype=dt, enabled=dt != torch.float32):
            o = head(out)
        t5 = clock()
        masks = F.interpolate(o["pred_masks"].float(), size=(a.size, a.size), mode="bilinear", align_corners=False)
        m2f.semantic_inference(o["pred_logits"].float(), masks).argmax(1)
        t6 = clock()
        for k, v in (("text", t1 - t0), ("vae_encoder", t2 - t1), ("unet", t3 - t2), ("projection", t4 - t3),
                     ("head", t5 - t4), ("post", t6 - t5)):
            parts.setdefault(k, []).append(v)
        return t6 - t0

    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats(dev)
    with torch.inference_mode():
        for _ in range(a.warmup):
            run()
        parts.clear()
        times = [run() for _ in range(a.runs)]
        if a.trace:
            traced(a.trace, dev, run)
            for v in parts.values():
                v.pop()  # the traced call's parts: not a timed run
    per_call = statistics.median(times)
    res = {"side": "torch", "seconds_per_image": per_call / a.batch, "images_per_second": a.batch / per_call,
           "batch": a.batch, "size": a.size, "device": str(dev), "dtype": a.dtype, "threads": a.threads,
           "torch": torch.__version__, "parts": {k: round(statistics.median(v), 4) for k, v in parts.items()}}
    if dev.type == "cuda":
        res["peak_allocated_bytes"] = torch.cuda.max_memory_allocated(dev)
        res["peak_reserved_bytes"] = torch.cuda.max_memory_reserved(dev)
        res["gpu"] = torch.cuda.get_device_name(dev)
    print(json.dumps(res) if a.json else res)


if __name__ == "__main__":
    main()
