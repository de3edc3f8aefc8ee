#!/usr/bin/env python3
"""The PyTorch side of scripts/bench-samsr.sh: the released SAMSR/SinSR
network (UNetModelSwin with configs/SamSR.yaml's sizes and the VQ-f4
autoencoder, random weights, torch.manual_seed(0)) from a checkout of the
reference (SAMSR_SRC, run, never copied), one Gaussian step as its sampler
computes it (bicubic x4, encode, prior, network, quantise, decode), timed per
image after a warm-up; and, with --write, the model folder rass-samsr runs
(the same weights through scripts/convert_samsr.py, method sinsr).

    SAMSR_SRC=/tmp/ref_SAMSR python3 scripts/bench_samsr_torch.py --folder DIR [--write] --size 128 --runs R --threads N

timm, cv2 and rotary_embedding_torch, imported by the reference at module
level, are replaced by stand-ins (they are not used on this path).
"""
import argparse
import os
import subprocess
import sys
import tempfile
import time
import types

import numpy as np
import torch

UNET = dict(image_size=64, in_channels=6, model_channels=160, out_channels=3, attention_resolutions=[64, 32, 16, 8],
            dropout=0, channel_mult=[1, 2, 2, 4], num_res_blocks=[2, 2, 2, 2], conv_resample=True, dims=2,
            use_fp16=False, num_head_channels=32, use_scale_shift_norm=True, resblock_updown=False, swin_depth=2,
            swin_embed_dim=192, window_size=8, mlp_ratio=4)
AE = dict(double_z=False, z_channels=3, resolution=256, in_channels=3, out_ch=3, ch=128, ch_mult=[1, 2, 4],
          num_res_blocks=2, attn_resolutions=[], dropout=0.0, padding_mode="zeros")
DIFF = dict(sf=4, schedule_name="exponential", schedule_kwargs={"power": 0.3}, etas_end=0.99, steps=15,
            min_noise_level=0.04, kappa=2.0, weighted_mse=False, predict_type="xstart", scale_factor=1.0,
            normalize_input=True, latent_flag=True)


def stand_ins():
    tl = types.ModuleType("timm.models.layers")
    tl.DropPath = lambda p: torch.nn.Identity()
    tl.to_2tuple = lambda x: tuple(x) if isinstance(x, (tuple, list)) else (x, x)
    tl.trunc_normal_ = lambda t, std=1.0: torch.nn.init.trunc_normal_(t, std=std)
    sys.modules.update({"timm": types.ModuleType("timm"), "timm.models": types.ModuleType("timm.models"),
                        "timm.models.layers": tl})
    cv2 = types.ModuleType("cv2")
    cv2.COLOR_RGB2BGR = 4
    cv2.cvtColor = lambda img, code: img[..., ::-1]
    sys.modules["cv2"] = cv2
    rot = types.ModuleType("rotary_embedding_torch")
    rot.RotaryEmbedding = None
    sys.modules["rotary_embedding_torch"] = rot
    seg = types.ModuleType("segment_anything")
    seg.SamAutomaticMaskGenerator = seg.sam_model_registry = None
    sys.modules.setdefault("segment_anything", seg)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--folder", required=True)
    ap.add_argument("--write", action="store_true")
    ap.add_argument("--size", type=int, default=128, help="low-resolution side (a multiple of 64)")
    ap.add_argument("--runs", type=int, default=2)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    a = ap.parse_args()
    stand_ins()
    sys.path.insert(0, os.environ["SAMSR_SRC"])
    from ldm.models.autoencoder import VQModelTorch
    from models.script_util import create_gaussian_diffusion
    from models.unet import UNetModelSwin
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    unet = UNetModelSwin(**UNET).eval()
    ae = VQModelTorch(AE, n_embed=8192, embed_dim=3).eval()
    if a.write and not os.path.isdir(a.folder):
        here = os.path.dirname(os.path.abspath(__file__))
        with tempfile.TemporaryDirectory() as tmp:
            up, ap_ = os.path.join(tmp, "unet.pth"), os.path.join(tmp, "ae.pth")
            torch.save(unet.state_dict(), up)
            torch.save(ae.state_dict(), ap_)
            subprocess.run([sys.executable, os.path.join(here, "convert_samsr.py"), up, "--autoencoder", ap_,
                            "--method", "sinsr", "-o", a.folder], check=True)
    diff = create_gaussian_diffusion(**DIFF)
    y = torch.rand(1, 3, a.size, a.size) * 2 - 1
    t = torch.tensor([DIFF["steps"] - 1])
    times = []
    with torch.no_grad():
        for i in range(a.runs + 1):
            start = time.perf_counter()
            z = diff.encode_first_stage(y, ae, up_sample=True)
            x = diff.prior_sample(z, torch.randn_like(z))
            x0 = diff.p_mean_variance(unet, x, z, t, clip_denoised=False, model_kwargs={"lq": y})["pred_xstart"]
            out = diff.decode_first_stage(x0, ae).clamp(-1, 1)
            if i:
                times.append(time.perf_counter() - start)
    print(f"PyTorch {torch.__version__} eager, SinSR one step, {a.size}x{a.size} -> {4 * a.size}: "
          f"{np.mean(times):.2f} s/img ({a.threads} threads), output {tuple(out.shape)}")


if __name__ == "__main__":
    main()
