#!/usr/bin/env python3
"""Golden fixtures for rass-samsr: a tiny ResShift UNetModelSwin and VQ
autoencoder built from the reference modules with random weights, run
through the reference diffusion code: SAMSR's (Liu-Zihang/SAMSR, models/
gaussian_diffusion.py, script_segment.py) for its mask-weighted one step,
and ResShift's (zsyOAOA/ResShift) for the Gaussian one step and the
respaced chain. The references are public repositories kept outside this
one (no licence file in SAMSR; ResShift's is non-commercial): they are run
here, never copied.

    git clone https://github.com/Liu-Zihang/SAMSR /tmp/ref_SAMSR
    git clone https://github.com/zsyOAOA/ResShift /tmp/ref_ResShift
    # the venv of make_sam_fixture.py (Debian's python3-torch 1.13, segment-anything 1.0), and:
    /tmp/samvenv/bin/pip install einops
    SAMSR_SRC=/tmp/ref_SAMSR RESSHIFT_SRC=/tmp/ref_ResShift DIFFUSERS_SRC=/tmp/samvenv/lib/python3.11/site-packages \\
        /tmp/samvenv/bin/python tests/nn/make_samsr_fixture.py

timm, cv2 and rotary_embedding_torch, imported by the references at module
level, are replaced by stand-ins: DropPath is unused (drop_path 0),
to_2tuple and trunc_normal_ are one line each, cv2.cvtColor(RGB2BGR) reverses
the channels, and the RoPE merge is not called.

Writes under tests/fixtures/nn/:
  samsr_tiny/       scripts/convert_samsr.py's folder: unet.safetensors,
                    autoencoder.safetensors, samsr.json (method samsr, the
                    tiny sizes, the mask generator's thresholds opened so the
                    random SAM keeps masks), sam/ (sam_tiny)
  samsr_lq.png      a 24x16 low-resolution image
  samsr_io.safetensors
      y, z_y                 the image in [-1, 1] and its latent
      masks, weight, noise   SAMSR: given masks [M+1, h, w] (background last),
                             W from them, the reference's weighted noise
      samsr_xt, samsr_x0, samsr_out   its prior sample, prediction, decoded output (clamped)
      sinsr_noise, sinsr_x0, sinsr_out   Gaussian one step
      chain_noise_k, chain_out   ResShift's chain respaced to 4 steps: every noise it drew, the output
      v3_noise_k, v3_out, v3_sqrt_etas   a 4-step chain with ResShift v3's schedule (min_noise_level 0.2)
      sam_z, sam_masks       SAMSR's masks of a latent by generate_masks_from_batch with sam_tiny
"""
import json
import os
import subprocess
import sys
import tempfile
import types

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
FIX = os.path.join(ROOT, "tests", "fixtures", "nn")
sys.path.insert(0, HERE)

import make_sam_fixture  # noqa: E402  (reference_env set up; the tiny SAM's builder)
import torch  # noqa: E402
from PIL import Image  # noqa: E402

import st_write  # noqa: E402


def stand_ins():
    timm = types.ModuleType("timm")
    tm = types.ModuleType("timm.models")
    tl = types.ModuleType("timm.models.layers")
    tl.DropPath = lambda p: torch.nn.Identity()
    tl.to_2tuple = lambda x: tuple(x) if isinstance(x, (tuple, list)) else (x, x)
    tl.trunc_normal_ = lambda t, std=1.0: torch.nn.init.trunc_normal_(t, std=std)
    timm.models, tm.layers = tm, tl
    sys.modules.update({"timm": timm, "timm.models": tm, "timm.models.layers": tl})
    cv2 = types.ModuleType("cv2")
    cv2.COLOR_RGB2BGR = 4
    cv2.cvtColor = lambda img, code: np.ascontiguousarray(img[..., ::-1])
    sys.modules["cv2"] = cv2
    rot = types.ModuleType("rotary_embedding_torch")
    rot.RotaryEmbedding = None
    sys.modules["rotary_embedding_torch"] = rot


UNET = dict(image_size=16, in_channels=6, model_channels=32, out_channels=3, attention_resolutions=[16, 8],
            dropout=0, channel_mult=[1, 2], num_res_blocks=[1, 1], conv_resample=True, dims=2, use_fp16=False,
            num_head_channels=16, use_scale_shift_norm=True, resblock_updown=False, swin_depth=2, swin_embed_dim=32,
            window_size=4, mlp_ratio=2)
AE = dict(double_z=False, z_channels=3, resolution=64, in_channels=3, out_ch=3, ch=32, ch_mult=[1, 1, 1],
          num_res_blocks=1, attn_resolutions=[], dropout=0.0, padding_mode="zeros")
DIFF = dict(sf=4, schedule_name="exponential", schedule_kwargs={"power": 0.3}, etas_end=0.99, steps=15,
            min_noise_level=0.04, kappa=2.0, weighted_mse=False, predict_type="xstart", scale_factor=1.0,
            normalize_input=True, latent_flag=True)
SAM_AMG = dict(points_per_side=4, pred_iou_thresh=0.0, stability_score_thresh=0.0, box_nms_thresh=0.9)


def randomise(model, seed):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("embedding.weight"):
                p.copy_(torch.randn(p.shape, generator=g) * 0.8)  # codebook entries spread like latents
            elif "norm" in name and name.endswith("weight"):
                p.copy_(1 + 0.2 * torch.randn(p.shape, generator=g))
            else:
                fan = p[0].numel() if p.dim() > 1 else 1
                p.copy_(torch.randn(p.shape, generator=g) / max(fan, 1) ** 0.5 * (1.0 if p.dim() > 1 else 0.1))


def lq_image():
    r = np.random.default_rng(7)
    y, x = np.mgrid[0:16, 0:24]
    a = np.stack([x * 10, y * 15, (x + y) * 6], -1).astype(np.float64)
    a[(x - 8) ** 2 + (y - 8) ** 2 < 20] = [220, 50, 60]
    a += r.normal(0, 10, a.shape)
    return np.clip(a, 0, 255).astype(np.uint8)


def import_from(src, names):
    """Import `names` with `src` first on the path (the two references share package names)."""
    for m in list(sys.modules):
        if m.split(".")[0] in ("models", "ldm", "utils", "script_segment", "basicsr", "datapipe"):
            del sys.modules[m]
    sys.path.insert(0, src)
    try:
        return [__import__(n, fromlist=["x"]) for n in names]
    finally:
        sys.path.remove(src)


def record_chain(diffusion, seed, name, io, y, unet, ae):
    """ResShift's p_sample_loop from `seed`, with every noise it draws kept:
    io[name_noise_k] (the prior's first) and io[name_out]."""
    draws = []
    real_randn_like = torch.randn_like

    def recording(x, *a, **k):
        r = real_randn_like(x, *a, **k)
        draws.append(r.clone())
        return r

    torch.manual_seed(seed)
    torch.randn_like = recording
    try:
        res = diffusion.p_sample_loop(y, unet, first_stage_model=ae, noise=None, clip_denoised=False,
                                      model_kwargs={"lq": y}, progress=False)
    finally:
        torch.randn_like = real_randn_like
    for k, d in enumerate(draws):
        io[f"{name}_noise_{k}"] = d
    io[f"{name}_out"] = res.clamp(-1, 1)


def main():
    stand_ins()
    samsr_src, resshift_src = os.environ["SAMSR_SRC"], os.environ["RESSHIFT_SRC"]
    unet_mod, ae_mod, su, gd, seg = import_from(
        samsr_src, ["models.unet", "ldm.models.autoencoder", "models.script_util", "models.gaussian_diffusion",
                    "script_segment"])
    torch.manual_seed(0)
    unet = unet_mod.UNetModelSwin(**UNET).eval()
    randomise(unet, 1)
    ae = ae_mod.VQModelTorch(AE, n_embed=64, embed_dim=3).eval()
    randomise(ae, 2)
    diff = su.create_gaussian_diffusion(**DIFF)
    lq = lq_image()
    y = torch.from_numpy(lq).permute(2, 0, 1).float().div(255).unsqueeze(0)
    y = (y - 0.5) / 0.5
    io = {"y": y}
    T = DIFF["steps"]
    with torch.no_grad():
        z_y = diff.encode_first_stage(y, ae, up_sample=True)
        io["z_y"] = z_y
        h, w = z_y.shape[2:]
        # SAMSR: given masks (two overlapping blobs and a stripe), the background last as generate_masks_from_batch adds it.
        yy, xx = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
        m = torch.stack([((yy - 6) ** 2 + (xx - 7) ** 2 < 30).float(), ((yy - 8) ** 2 + (xx - 11) ** 2 < 20).float(),
                         (xx >= 18).float()])
        bg = torch.prod(1 - m, 0, keepdim=True)
        masks = torch.cat([m, bg]).unsqueeze(0)
        torch.manual_seed(11)
        noise = seg.normalize_noise_to_unit_variance(seg.generate_weighted_noise(masks))
        t = torch.tensor([T - 1])
        diff.reset_weight(masks, t, y, "cpu")
        x_t = diff.prior_sample_train(z_y, masks, noise)
        out = diff.p_mean_variance_modified(unet, x_t, z_y, t, clip_denoised=False, model_kwargs={"lq": y})
        io.update(masks=masks[0], weight=gd.normalize_mask_counts(seg.count_masks_per_pixel(masks)).unsqueeze(1),
                  noise=noise, samsr_xt=x_t, samsr_x0=out["pred_xstart"],
                  samsr_out=diff.decode_first_stage(out["pred_xstart"], ae).clamp(-1, 1))
        # SAMSR's masks of a latent: generate_masks_from_batch with the tiny SAM and opened thresholds.
        sam = make_sam_fixture.build()
        sam.load_state_dict(make_sam_fixture.read_safetensors(os.path.join(FIX, "sam_tiny", "sam.safetensors")))
        real = seg.SamAutomaticMaskGenerator

        def generator(model, **kw):
            for k, v in SAM_AMG.items():
                kw.setdefault(k, v)
            return real(model, **kw)

        seg.SamAutomaticMaskGenerator = generator
        sam_masks = seg.generate_masks_from_batch(sam, z_y, upscale=False, apply_activation=False)
        seg.SamAutomaticMaskGenerator = real
        io.update(sam_z=z_y, sam_masks=sam_masks[0])
        print(f"SAM masks of the latent: {sam_masks.shape[1] - 1} (+ background)")

    # ResShift's own diffusion for the Gaussian paths (SAMSR's sampler always takes SAM's path).
    (rsu,) = import_from(resshift_src, ["models.script_util"])
    with torch.no_grad():
        one = rsu.create_gaussian_diffusion(**DIFF)
        torch.manual_seed(12)
        g = torch.randn_like(z_y)
        x0 = one.p_mean_variance(unet, one.prior_sample(z_y, g), z_y, torch.tensor([T - 1]), clip_denoised=False,
                                 model_kwargs={"lq": y})["pred_xstart"]
        io.update(sinsr_noise=g, sinsr_x0=x0, sinsr_out=one.decode_first_stage(x0, ae).clamp(-1, 1))
        chain = rsu.create_gaussian_diffusion(**dict(DIFF, timestep_respacing=4))
        record_chain(chain, 13, "chain", io, y, unet, ae)
        print(f"chain: timesteps {chain.timestep_map}")
        # ResShift v3's schedule (its journal config: 4 steps, min_noise_level 0.2; its code has no sqrt(0.001) cap).
        v3 = rsu.create_gaussian_diffusion(**dict(DIFF, steps=4, min_noise_level=0.2))
        record_chain(v3, 14, "v3", io, y, unet, ae)
        io["v3_sqrt_etas"] = torch.from_numpy(v3.sqrt_etas).float()

    os.makedirs(FIX, exist_ok=True)
    Image.fromarray(lq).save(os.path.join(FIX, "samsr_lq.png"))
    st_write.save(os.path.join(FIX, "samsr_io.safetensors"), {k: v.float().numpy() for k, v in io.items()})
    target = os.path.join(FIX, "samsr_tiny")
    if os.path.exists(target):
        subprocess.run(["rm", "-rf", target], check=True)
    with tempfile.TemporaryDirectory() as tmp:
        up, ap = os.path.join(tmp, "unet.pth"), os.path.join(tmp, "ae.pth")
        torch.save({"state_dict": unet.state_dict()}, up)
        torch.save(ae.state_dict(), ap)
        cfg = {"unet": {k: UNET[k] for k in ("image_size", "model_channels", "channel_mult", "num_res_blocks",
                                             "attention_resolutions", "num_head_channels", "swin_embed_dim",
                                             "window_size", "mlp_ratio")},
               "autoencoder": {"ch": AE["ch"], "ch_mult": AE["ch_mult"], "num_res_blocks": AE["num_res_blocks"],
                               "n_embed": 64, "resolution": AE["resolution"]},
               "diffusion": {"steps": DIFF["steps"], "kappa": DIFF["kappa"]},
               "sam": {"points_per_side": SAM_AMG["points_per_side"], "pred_iou_thresh": 0.0,
                       "stability_thresh": 0.0, "nms_thresh": SAM_AMG["box_nms_thresh"]}}
        subprocess.run([sys.executable, os.path.join(ROOT, "scripts", "convert_samsr.py"), up, "--autoencoder", ap,
                        "--sam", os.path.join(FIX, "sam_tiny"), "--config", json.dumps(cfg), "-o", target], check=True)
    # The SAM folder is a copy of sam_tiny (links do not survive git).
    print("wrote", target)


if __name__ == "__main__":
    main()
