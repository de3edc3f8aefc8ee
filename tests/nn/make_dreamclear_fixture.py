#!/usr/bin/env python3
"""Golden fixtures for DreamClear (seed paper 003): a tiny random-weight
ControlPixArtMSHalfSR2Branch (PixArtMS + the two ControlNet-half branches, the
degradation-aware cross attention and the adaptive modulators), a tiny SwinIR,
and test.py's whole inference path, run by the released reference code of
github:shallowdream204/DreamClear at commit
fbe0938c653d0e0bc086bf1d4449cdfca210cca3 (kept outside this repository, run
and never copied; its diffusion/ package, util_image.py and test.py).

    git clone https://github.com/shallowdream204/DreamClear /tmp/ref/dreamclear
    git -C /tmp/ref/dreamclear checkout fbe0938c653d0e0bc086bf1d4449cdfca210cca3
    # the venv of make_sam_fixture.py (Debian's python3-torch 1.13, torchvision 0.14,
    # diffusers 0.25.1, Pillow 9.4.0, opencv-python-headless 4.6.0.66), and:
    /tmp/samvenv/bin/pip install einops
    /tmp/samvenv/bin/pip install --no-deps timm==0.6.13
    DREAMCLEAR_SRC=/tmp/ref/dreamclear DIFFUSERS_SRC=/tmp/samvenv/lib/python3.11/site-packages \\
        /tmp/samvenv/bin/python tests/nn/make_dreamclear_fixture.py

DreamClear pins timm 0.6.12, which does not import on Python 3.11 (a
dataclass default in maxxvit.py); 0.6.13 fixes only that, and its Mlp,
Attention, PatchEmbed, DropPath, to_2tuple and trunc_normal_ (the names the
reference uses) are the same code, so the submodule names (fc1/fc2, qkv/proj)
are the real ones. Stand-ins, put in sys.modules before the reference is
imported:
  xformers   no CPU wheel. xformers.ops.memory_efficient_attention(q, k, v,
             p=0., attn_bias=None) with xformers' semantics: q, k, v are
             [B, M, H, K], scale 1/sqrt(K); attn_bias None attends over all M
             keys; fmha.BlockDiagonalMask.from_seqlens(q_seqlen, kv_seqlen)
             lets the i-th block of q_seqlen queries attend only the i-th
             block of kv_seqlen keys (B must be 1, as in the reference); a
             tensor attn_bias ([B, H, M, N] or [B*H, M, N]) is added to the
             logits. Computed in float64 with plain torch ops, cast back to
             the input dtype; dropout p must be 0.
  mmcv       only its registry (diffusion/model/builder.py's MODELS, used as
             a class decorator), mmcv.runner.get_dist_info and
             mmcv.utils.logging.logger_initialized, imported at module level
             by diffusion/utils/{dist_utils,logger}.py for training/logging.
  huggingface_hub, safetensors   reference_env.py's permissive stand-ins
             (diffusers imports them for downloads only); the sd_tiny VAE is
             read by a small safetensors reader here.
T5 and LLaVA (test.py's captioner and text encoder) are not run: the caption
embedding is a random [1, L, C] tensor with an attention mask, as
T5Embedder.get_text_embeddings returns.

The tiny configuration. PixArtMS(input_size=16, patch_size=2, in_channels=4,
hidden_size=48, depth=4, num_heads=4, mlp_ratio=4.0, learn_sigma=True,
pred_sigma=True, caption_channels=32, model_max_length=8, lewei_scale=2.0,
window_size=0, window_block_indexes=[], use_rel_pos=False,
class_dropout_prob=0.1) in ControlPixArtMSHalfSR2Branch(base, copy_blocks_num=3).
hidden_size must be a multiple of 3: PixArtMS's csize_embedder and
ar_embedder are SizeEmbedder(hidden_size // 3), and t + cat([csize (2 x D/3),
ar (D/3)]) needs 3 * (D // 3) == D (64 fails: 63 vs 64; the script checks
this); 48 is the nearest below 64 (head dim 12). base_size = input_size //
patch_size = 8 (PixArt.__init__). ControlPixArtMSHalfSR2Branch.__init__
hard-codes Zero_MultiHeadCrossAttentionDe(1152, 16) and
PatchEmbed_Zero(patch_size=2, in_chans=4, embed_dim=1152, bias=True); in the
released model 1152 and 16 are the base model's hidden size and head count,
so both names are replaced in the pixart_controlnet module, during
construction only, by wrappers that build them with (48, 4) and embed_dim=48.
SwinIR: test.py's arguments with embed_dim=24, depths=[2, 2],
num_heads=[2, 2], window_size=4 (img_size=64, patch_size=1, mlp_ratio=2,
sf=8, img_range=1.0, upsampler "nearest+conv", resi_connection "1conv",
unshuffle=True, unshuffle_scale=8). Every weight is random (fixed seeds;
N(mean, variance)): a weight of fan-in n is N(0, 1/n), a bias N(0, 0.01), a LayerNorm weight
1 + N(0, 0.01), the modulation tables (scale_shift_table) and SwinIR's
relative_position_bias_table N(0, 0.01), the null caption y_embedding N(0, 1);
so no zero-initialised branch (cross_attn.proj, cross_de.proj, the adaptive
modulators' projections, the MoE gate's last linear, final_layer.linear,
PatchEmbed_Zero) is zero. The DiT's final_layer.linear is then scaled by 0.3
so that eps and the learned-variance channels stay O(1) (fwd.out within about
+-2, cfg.out +-6; the variance interpolation fraction stays near [0, 1]).
SwinIR's output then lies in about [-0.2, 1.0] (about 2% of the pipeline's
values are clamped). All float32, eval mode, torch.set_num_threads(1); a
rerun writes the same bytes.

The sampling loops grow to O(10^3) (sample.out, p.samples): a random
eps-model does not predict the noise, and at t = 999 pred_x0 =
(x - sqrt(1 - acp) eps) / sqrt(acp) with 1 / sqrt(acp) = 157; that is
DDPM's arithmetic, not the network's, so compare them with a relative
tolerance. The decoded images stay in about [-0.8, 1.8].

Writes under tests/fixtures/nn/:
  dreamclear_tiny/
    dit.safetensors     the wrapper's state_dict() with its exact keys, less
                        the buffer base_model.pos_embed (the sin-cos table of
                        the 8x8 grid; the forward recomputes it per size)
    swinir.safetensors  SwinIR's state_dict() less the derived buffers
                        *.relative_position_index and *.attn_mask
    vae/                a copy of sd_tiny/vae (diffusers AutoencoderKL, 1/8)
    dreamclear.json     the sizes ("format": "rass-dreamclear")
  dreamclear_io.safetensors   (float32 unless stated; see the metadata too)
    fwd.x [2,4,16,12], fwd.t [2] (999, 421), fwd.y [2,1,8,32],
    fwd.mask [1,1,8] (5 ones; passed to the reference as int64, as T5's mask),
    fwd.c_lq, fwd.c_pre [1,4,16,12], fwd.hw [1,2] = 1024,1024, fwd.ar [1,1] = 1,
    fwd.out [2,8,16,12]        model(x, t, y, mask, data_info, c_lq, c_pre)
    fwd.out_nomask             the same with mask=None
    fwd.base_out               c_lq = c_pre = None (only blocks 3..3 run)
    fwd.pos_embed [1,48,48]    get_2d_sincos_pos_embed for the 8x6 token grid
    fwd.single_out [1,8,16,12] model(x[:1], t[:1], y[:1], mask, ...) alone
    cfg.y [2,1,8,32] = cat([fwd.y[:1], null_y]); cfg.out [2,8,16,12] =
        forward_with_cfg(fwd.x, fwd.t, cfg.y, 4.5, data_info, mask=fwd.mask,
        c_lq, c_pre)
    tile.x [2,4,24,20], tile.c_lq, tile.c_pre [1,4,24,20], tile.t [2] (999),
    tile.out = forward_with_cfg_tile(tile.x, tile.t, cfg.y, 4.5, data_info,
        c_lq, c_pre, latent_tiled_size=16, latent_tiled_overlap=4, mask)
    tile.weights [16,16] float64 = _gaussian_weights(16, 16, ...)[0, 0]
    sample.z0 [1,4,16,12]; sample.noise [4,2,4,16,12] (every th.randn_like of
        p_sample, the last one unused since t == 0); sample.out [2,4,16,12]
        (p_sample_loop of IDDPM("4") on forward_with_cfg, both halves);
        sample.timesteps int64 [4] (the original timesteps the model sees);
        sample.betas float64 [4] (the respaced betas)
    swinir.in [1,3,64,96] in [0,1]; swinir.out [1,3,64,96] (8x12 tokens after
        the 8x unshuffle: 2x3 windows of 4, shifted by 2 in the odd blocks;
        80x72 cannot run in the reference: SwinIR pads the image to a multiple
        of the window (4) before the unshuffle, so 10x9 tokens reach
        window_partition unpadded and its view fails)
    p1.*, p2.*  test.py's log_validation for one image (min_size 128 instead
        of 1024; upscale 4, cfg 4.5, wavelet colour fix, float32, IDDPM("3")):
        p.lq uint8 HxWx3; p.y [1,8,32], p.mask [1,8] (6 ones) the caption
        embedding and mask (txt_fea = y[None], attention_mask = mask[None]);
        p.img_lq [1,3,H,W] (PIL2Tensor); p.img_pre (SwinIR, clamped);
        p.latent_lq, p.latent_pre [1,4,h,w] (vae.encode(2x-1).latent_dist.mode()
        * 0.18215); p.z0 [1,4,h,w]; p.noise [3,2,4,h,w]; p.samples [1,4,h,w]
        (the first half after the loop); p.decoded [1,3,H,W]
        ((vae.decode(samples / 0.18215).sample + 1) / 2); p.hq [3,H,W]
        (wavelet_reconstruction(decoded, img_pre).clamp(0, 1)[0]); p.out uint8
        (Tensor2PIL(hq, h0, w0)); p.h0, p.w0 int64 [1].
        p1: 32x32 LQ -> 128x128, latent 16x16 = 128 // 8: forward_with_cfg.
        p2: 48 wide x 32 high -> 192x128, latent 16x24: forward_with_cfg_tile
        (latent_tiled_size 16, overlap 4).
The safetensors metadata "quirks" (JSON) holds what the script verified by
running (printed too).
"""
import io as io_bytes
import json
import zipfile
import math
import os
import shutil
import struct
import sys
import types

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
FIX = os.path.join(ROOT, "tests", "fixtures", "nn")
sys.path.insert(0, HERE)

import reference_env  # noqa: E402

reference_env.setup()
import torch  # noqa: E402
from PIL import Image  # noqa: E402

import st_write  # noqa: E402

COMMIT = "fbe0938c653d0e0bc086bf1d4449cdfca210cca3"
HIDDEN, HEADS = 48, 4
DIT = dict(input_size=16, patch_size=2, in_channels=4, hidden_size=HIDDEN, depth=4, num_heads=HEADS, mlp_ratio=4.0,
           learn_sigma=True, pred_sigma=True, caption_channels=32, model_max_length=8, lewei_scale=2.0,
           window_size=0, window_block_indexes=[], use_rel_pos=False, class_dropout_prob=0.1)
COPY_BLOCKS = 3
SWINIR = dict(img_size=64, patch_size=1, in_chans=3, embed_dim=24, depths=[2, 2], num_heads=[2, 2], window_size=4,
              mlp_ratio=2, sf=8, img_range=1.0, upsampler="nearest+conv", resi_connection="1conv", unshuffle=True,
              unshuffle_scale=8)
SCALE_FACTOR = 0.18215
CFG = 4.5
MIN_SIZE = 128  # test.py: 1024
TILE, OVERLAP = 16, 4
FINAL_SCALE = 0.3  # final_layer.linear of the DiT


# ----------------------------------------------------------------------------- stand-ins
class BlockDiagonalMask:
    """xformers.ops.fmha.BlockDiagonalMask: block i of q_seqlen queries sees only block i of kv_seqlen keys."""

    def __init__(self, q_seqlen, kv_seqlen):
        self.q_seqlen, self.kv_seqlen = q_seqlen, kv_seqlen

    @classmethod
    def from_seqlens(cls, q_seqlen, kv_seqlen=None):
        q = [int(n) for n in q_seqlen]
        k = q if kv_seqlen is None else [int(n) for n in kv_seqlen]
        assert len(q) == len(k) and all(a == b for a, b in zip(q, q_seqlen))
        assert kv_seqlen is None or all(a == b for a, b in zip(k, kv_seqlen))
        return cls(q, k)

    def materialize(self, m, n, dtype):
        assert sum(self.q_seqlen) == m and sum(self.kv_seqlen) == n, (self.q_seqlen, self.kv_seqlen, m, n)
        bias = torch.full((m, n), float("-inf"), dtype=dtype)
        q0 = k0 = 0
        for a, b in zip(self.q_seqlen, self.kv_seqlen):
            bias[q0:q0 + a, k0:k0 + b] = 0
            q0, k0 = q0 + a, k0 + b
        return bias


def memory_efficient_attention(query, key, value, attn_bias=None, p=0.0, scale=None, op=None):
    assert p == 0.0, "dropout is not part of the stand-in"
    B, M, H, K = query.shape
    N = key.shape[1]
    s = scale if scale is not None else K ** -0.5
    q, k, v = (t.permute(0, 2, 1, 3).double() for t in (query, key, value))  # B H M K
    logits = (q @ k.transpose(-1, -2)) * s  # B H M N
    if isinstance(attn_bias, BlockDiagonalMask):
        assert B == 1, "BlockDiagonalMask needs the batch flattened into one sequence"
        logits = logits + attn_bias.materialize(M, N, logits.dtype)
    elif attn_bias is not None:
        bias = attn_bias.double()
        if bias.dim() == 3:
            bias = bias.view(B, H, M, N)
        logits = logits + bias
    out = torch.softmax(logits, dim=-1) @ v.double()
    return out.permute(0, 2, 1, 3).to(query.dtype).contiguous()


def stand_ins():
    xf = types.ModuleType("xformers")
    ops = types.ModuleType("xformers.ops")
    fmha = types.ModuleType("xformers.ops.fmha")
    fmha.BlockDiagonalMask = BlockDiagonalMask
    ops.fmha = fmha
    ops.memory_efficient_attention = memory_efficient_attention
    xf.ops = ops
    sys.modules.update({"xformers": xf, "xformers.ops": ops, "xformers.ops.fmha": fmha})

    mmcv = types.ModuleType("mmcv")

    class Registry:
        def __init__(self, name):
            self.name, self.module_dict = name, {}

        def register_module(self, name=None, force=False, module=None):
            def deco(obj):
                self.module_dict[name or obj.__name__] = obj
                return obj
            return deco

    mmcv.Registry = Registry
    runner = types.ModuleType("mmcv.runner")
    runner.get_dist_info = lambda: (0, 1)
    utils = types.ModuleType("mmcv.utils")
    logging_ = types.ModuleType("mmcv.utils.logging")
    logging_.logger_initialized = {}
    utils.logging = logging_
    mmcv.runner, mmcv.utils = runner, utils
    sys.modules.update({"mmcv": mmcv, "mmcv.runner": runner, "mmcv.utils": utils, "mmcv.utils.logging": logging_})


# ----------------------------------------------------------------------------- helpers
def read_safetensors(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    out = {}
    for k, v in header.items():
        if k == "__metadata__":
            continue
        a, b = v["data_offsets"]
        dt = {"F32": np.float32, "F16": np.float16}[v["dtype"]]
        out[k] = torch.from_numpy(np.frombuffer(data[a:b], dtype=dt).reshape(v["shape"]).copy())
    return out


def randomise(model, seed, skip=()):
    """Every weight random: see the docstring for the scales."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for mname, mod in model.named_modules():
            for pname, p in list(mod.named_parameters(recurse=False)) + list(mod.named_buffers(recurse=False)):
                full = f"{mname}.{pname}" if mname else pname
                if p is None or any(full.endswith(s) for s in skip):
                    continue
                if isinstance(mod, torch.nn.LayerNorm):
                    v = (1.0 if pname == "weight" else 0.0) + 0.1 * torch.randn(p.shape, generator=g)
                elif pname == "y_embedding":
                    v = torch.randn(p.shape, generator=g)
                elif pname == "weight" and p.dim() >= 2:
                    v = torch.randn(p.shape, generator=g) / math.sqrt(p[0].numel())
                elif pname in ("bias", "scale_shift_table", "relative_position_bias_table"):
                    v = 0.1 * torch.randn(p.shape, generator=g)
                else:
                    raise RuntimeError(f"no rule for {full} {tuple(p.shape)}")
                p.copy_(v)


def import_reference():
    # diffusers first: it probes for xformers with importlib.util.find_spec, which a stand-in would confuse.
    from diffusers.models import AutoencoderKL
    stand_ins()
    src = os.environ.get("DREAMCLEAR_SRC")
    if not src:
        sys.exit("set DREAMCLEAR_SRC to a checkout of shallowdream204/DreamClear (see the docstring)")
    sys.path.insert(0, src)
    import diffusion.model.nets.pixart_controlnet as pc
    from diffusion.model.nets import PixArtMS
    from diffusion import IDDPM
    from diffusion.model.nets import SwinIR
    from diffusion.utils.align_color import wavelet_reconstruction
    import util_image
    return types.SimpleNamespace(AutoencoderKL=AutoencoderKL, pc=pc, PixArtMS=PixArtMS, IDDPM=IDDPM,
                                 SwinIR=SwinIR,
                                 wavelet_reconstruction=wavelet_reconstruction, util_image=util_image)


def build_dit(ref, hidden=HIDDEN, heads=HEADS):
    pc = ref.pc
    real_de, real_pe = pc.Zero_MultiHeadCrossAttentionDe, pc.PatchEmbed_Zero
    seen = []

    def de(d_model, num_heads, **kw):
        # The class's __init__ calls super(Zero_MultiHeadCrossAttentionDe, self): the real class must be in place.
        seen.append(("Zero_MultiHeadCrossAttentionDe", d_model, num_heads))
        pc.Zero_MultiHeadCrossAttentionDe = real_de
        try:
            return real_de(hidden, heads, **kw)
        finally:
            pc.Zero_MultiHeadCrossAttentionDe = de

    def pe(**kw):
        seen.append(("PatchEmbed_Zero", kw["embed_dim"]))
        return real_pe(**dict(kw, embed_dim=hidden))

    torch.manual_seed(0)
    base = ref.PixArtMS(**dict(DIT, hidden_size=hidden, num_heads=heads))
    pc.Zero_MultiHeadCrossAttentionDe, pc.PatchEmbed_Zero = de, pe
    try:
        model = pc.ControlPixArtMSHalfSR2Branch(base, copy_blocks_num=COPY_BLOCKS)
    finally:
        pc.Zero_MultiHeadCrossAttentionDe, pc.PatchEmbed_Zero = real_de, real_pe
    assert set(seen) == {("Zero_MultiHeadCrossAttentionDe", 1152, 16), ("PatchEmbed_Zero", 1152)}, seen
    model.eval()
    return model


def lq_image(rng, w, h):
    small = rng.integers(0, 256, (h // 4, w // 4, 3), dtype=np.uint8)
    a = np.asarray(Image.fromarray(small).resize((w, h), Image.BILINEAR)).astype(np.float64)
    a += rng.normal(0, 8, a.shape)
    return np.clip(np.round(a), 0, 255).astype(np.uint8)


class NoiseRecorder:
    """Records every torch.randn_like draw (gaussian_diffusion calls th.randn_like, th being torch)."""

    def __init__(self):
        self.draws = []

    def __enter__(self):
        self.real = torch.randn_like

        def recording(x, *a, **k):
            r = self.real(x, *a, **k)
            self.draws.append(r.clone())
            return r

        torch.randn_like = recording
        return self

    def __exit__(self, *exc):
        torch.randn_like = self.real


class TimestepRecorder:
    """Wraps the model callable to record the (original) timesteps it receives."""

    def __init__(self, fn):
        self.fn, self.ts = fn, []

    def __call__(self, x, timestep, **kw):
        self.ts.append(timestep.clone())
        return self.fn(x, timestep, **kw)


# ----------------------------------------------------------------------------- main
def main():
    torch.set_num_threads(1)
    ref = import_reference()
    quirks = {}

    def note(key, value):
        quirks[key] = value
        print(f"[quirk] {key}: {value}")

    data_info = {"img_hw": torch.tensor([[1024.0, 1024.0]]), "aspect_ratio": torch.tensor([[1.0]])}

    # hidden_size 64 (the brief's) cannot run: SizeEmbedder(64 // 3) gives 2*21 + 21 = 63 channels for t's 64.
    with torch.no_grad():
        m64 = build_dit(ref, 64, 4)
        try:
            m64(torch.zeros(2, 4, 16, 12), torch.tensor([999.0, 1.0]), torch.zeros(2, 1, 8, 32),
                data_info=data_info, c_lq=torch.zeros(1, 4, 16, 12), c_pre=torch.zeros(1, 4, 16, 12))
            raise RuntimeError("hidden_size 64 ran")
        except RuntimeError as e:
            note("hidden_size_64", f"fails in t + cat([csize, ar]): {str(e).splitlines()[0]}")
        del m64

    model = build_dit(ref)
    randomise(model, 1, skip=("base_model.pos_embed",))
    with torch.no_grad():  # keeps eps and the variance channels O(1) (see the docstring)
        model.base_model.final_layer.linear.weight.mul_(FINAL_SCALE)
        model.base_model.final_layer.linear.bias.mul_(FINAL_SCALE)
    note("base_size", int(model.base_size))
    note("lewei_scale_attribute", repr(model.lewei_scale) + " (PixArt.__init__ stores a 1-tuple; numpy broadcasts it)")

    sd = model.state_dict()
    dit_sd = {k: v for k, v in sd.items() if k != "base_model.pos_embed"}
    print("dit.safetensors keys:")
    for k, v in dit_sd.items():
        print(f"  {k} {list(v.shape)}")
    print(f"  ({len(dit_sd)} tensors, {sum(v.numel() for v in dit_sd.values())} values)")

    io = {}
    g = torch.Generator().manual_seed(5)
    x = torch.randn(2, 4, 16, 12, generator=g)
    t = torch.tensor([999.0, 421.0])
    y = torch.randn(2, 1, 8, 32, generator=g)
    mask_f = torch.tensor([[[1, 1, 1, 1, 1, 0, 0, 0]]], dtype=torch.float32)
    mask = mask_f.long()  # T5's attention mask is int64
    c_lq = torch.randn(1, 4, 16, 12, generator=g)
    c_pre = torch.randn(1, 4, 16, 12, generator=g)
    io.update({"fwd.x": x, "fwd.t": t, "fwd.y": y, "fwd.mask": mask_f, "fwd.c_lq": c_lq, "fwd.c_pre": c_pre,
               "fwd.hw": data_info["img_hw"], "fwd.ar": data_info["aspect_ratio"]})
    with torch.no_grad():
        out = model(x, t, y, mask=mask, data_info=data_info, c_lq=c_lq, c_pre=c_pre)
        io["fwd.out"] = out
        io["fwd.out_nomask"] = model(x, t, y, mask=None, data_info=data_info, c_lq=c_lq, c_pre=c_pre)
        io["fwd.base_out"] = model(x, t, y, mask=mask, data_info=data_info, c_lq=None, c_pre=None)
        io["fwd.pos_embed"] = torch.from_numpy(ref.pc.get_2d_sincos_pos_embed(
            HIDDEN, (8, 6), lewei_scale=model.lewei_scale, base_size=model.base_size)).float().unsqueeze(0)
        # The table by formula: token n = i * w + j; the first D/2 channels encode the column j, the second the row i.
        hh, ww, q = 8, 6, HIDDEN // 4
        omega = 1.0 / 10000 ** (np.arange(q, dtype=np.float64) / q)
        ii, jj = np.meshgrid(np.arange(hh), np.arange(ww), indexing="ij")
        base, lw = model.base_size, DIT["lewei_scale"]
        pw = (jj.reshape(-1) * base / ww / lw)[:, None] * omega
        ph = (ii.reshape(-1) * base / hh / lw)[:, None] * omega
        formula = np.concatenate([np.sin(pw), np.cos(pw), np.sin(ph), np.cos(ph)], 1)
        note("pos_embed", "get_2d_sincos_pos_embed(D, (h, w), lewei_scale, base_size) for token n = i*w + j is "
             "[sin(a*om), cos(a*om), sin(b*om), cos(b*om)] with a = j*base_size/w/lewei (the column first), "
             "b = i*base_size/h/lewei, om_k = 10000^(-k/(D/4)), k < D/4 (each axis scaled by its own length); "
             f"max |table - formula| for 8x6 = {np.abs(io['fwd.pos_embed'][0].numpy() - formula).max():.3g}")
        single = model(x[:1], t[:1], y[:1], mask=mask, data_info=data_info, c_lq=c_lq, c_pre=c_pre)
        io["fwd.single_out"] = single
        blk, de0 = model.base_model.blocks[0], model.cross_de[0]
        note("norms", f"PixArt blocks' norm1/norm2 and final_layer.norm_final: LayerNorm eps "
             f"{blk.norm1.eps:g}, affine {blk.norm1.elementwise_affine}; cross_de norm1/norm2: eps {de0.norm1.eps:g}, "
             f"affine {de0.norm1.elementwise_affine}; the blocks' cross_attn has no norm on its query; GELU is the "
             f"tanh form in the blocks' Mlp, y_embedder and the modulators (SwinIR's Mlp: exact erf GELU)")
        for k in ("fwd.out", "fwd.out_nomask", "fwd.base_out"):
            print(f"{k}: max |.| {io[k].abs().max():.4f}, std {io[k].std():.4f}")

        # cross_de (Zero_MultiHeadCrossAttentionDe) is called without a mask: the batch is one sequence.
        d_mix = (single[0] - out[0]).abs().max().item()
        real_fwd = ref.pc.Zero_MultiHeadCrossAttentionDe.forward

        def per_sample(self, xx, cond, mask=None):
            B, N, _ = xx.shape
            return real_fwd(self, xx, cond, mask=[N] * B)

        ref.pc.Zero_MultiHeadCrossAttentionDe.forward = per_sample
        out_ps = model(x, t, y, mask=mask, data_info=data_info, c_lq=c_lq, c_pre=c_pre)
        single_ps = model(x[:1], t[:1], y[:1], mask=mask, data_info=data_info, c_lq=c_lq, c_pre=c_pre)
        ref.pc.Zero_MultiHeadCrossAttentionDe.forward = real_fwd
        note("cross_de_batch_mixing",
             f"cross_de gets mask=None, so q/k/v are viewed as one sequence of B*N tokens and every token of the "
             f"batch attends to all B*N tokens of c_pre: out[0] of the batch-2 forward differs from the batch-1 "
             f"forward of sample 0 by {d_mix:.4g} (max abs); with a per-sample mask in cross_de the two agree to "
             f"{(single_ps[0] - out_ps[0]).abs().max().item():.3g} and the batch-2 output moves by "
             f"{(out_ps - out).abs().max().item():.4g}")

        # Without c_lq / c_pre only blocks copy_blocks_num .. depth-1 run.
        blk0 = model.base_model.blocks[0]
        saved = {k: v.clone() for k, v in blk0.state_dict().items()}
        for p in blk0.parameters():
            p.add_(1.0)
        b0 = model(x, t, y, mask=mask, data_info=data_info)
        full0 = model(x, t, y, mask=mask, data_info=data_info, c_lq=c_lq, c_pre=c_pre)
        blk0.load_state_dict(saved)
        note("base_forward_blocks",
             f"with c_lq=None or c_pre=None the forward runs only base blocks {COPY_BLOCKS}..{DIT['depth'] - 1} "
             f"(blocks 0..{COPY_BLOCKS - 1} are skipped; the release has copy_blocks_num 28 = depth, so no block "
             f"at all): changing base block 0 changes base_out by {(b0 - io['fwd.base_out']).abs().max().item():.3g} "
             f"and the controlled out by {(full0 - out).abs().max().item():.4g}")
        note("c_embedding_no_pos",
             "forward embeds c_lq / c_pre with c_embedder_lq / c_embedder_pre (PatchEmbed_Zero) and adds no "
             "position embedding (forward_c_lq / forward_c_pre are never called); x_embedder_lq / _pre(x) + pos "
             "are the branches' inputs, c is added to them in block 0 only (broadcast from batch 1)")

        # forward_with_cfg
        null_y = model.y_embedder.y_embedding[None].repeat(1, 1, 1)[:, None]
        cy = torch.cat([y[:1], null_y])
        io["cfg.y"] = cy
        cfg = model.forward_with_cfg(x, t, cy, CFG, data_info, c_lq, c_pre, mask=mask)
        io["cfg.out"] = cfg
        raw = model(torch.cat([x[:1], x[:1]]), t, cy, mask=mask, data_info=data_info, c_lq=c_lq, c_pre=c_pre)
        guided = raw[1:2, :3] + CFG * (raw[0:1, :3] - raw[1:2, :3])
        note("cfg_three_channels",
             f"forward_with_cfg guides model_out[:, :3] only (eps of 3 of the 4 latent channels): "
             f"|cfg.out[:, :3] - (u + 4.5 (c - u))| = {(cfg[:, :3] - guided.expand(2, -1, -1, -1)).abs().max():.3g}; "
             f"channel 3 and the variance channels 4..7 are the raw rows: |cfg.out[:, 3:] - raw[:, 3:]| = "
             f"{(cfg[:, 3:] - raw[:, 3:]).abs().max():.3g}, while the guided and unguided channel 3 of sample 0 differ "
             f"by {((raw[1, 3] + CFG * (raw[0, 3] - raw[1, 3])) - raw[0, 3]).abs().max():.4g}")
        note("cfg_input_halves", "forward_with_cfg runs cat([x[:B/2], x[:B/2]]) (the second half of x is ignored) "
             "with the timesteps as given")
        ymask = (model.y_embedder(cy, False).squeeze(1).masked_select(
            mask.repeat(2, 1, 1, 1).squeeze(1).squeeze(1).unsqueeze(-1) != 0)).numel() // HIDDEN
        note("null_caption_masked",
             f"the caption mask is repeated over the batch, so the null caption (y_embedding, 8 tokens) is cut to "
             f"the caption's 5 tokens too: {ymask} tokens kept over the cfg batch")

        # forward_with_cfg_tile
        gt = torch.Generator().manual_seed(6)
        tx = torch.randn(2, 4, 24, 20, generator=gt)
        tc_lq = torch.randn(1, 4, 24, 20, generator=gt)
        tc_pre = torch.randn(1, 4, 24, 20, generator=gt)
        tt = torch.tensor([999.0, 999.0])
        calls = []
        real_forward = model.forward

        def spy(xx, timestep, yy, **kw):
            calls.append((tuple(xx.shape), tuple(kw["c_lq"].shape)))
            return real_forward(xx, timestep, yy, **kw)

        # forward_with_cfg_tile calls self.forward; ControlPixArtMSHalfSR2Branch.__getattr__ reads forward from
        # __dict__ only for names it lists, so an instance attribute is found first.
        model.forward = spy
        tout = model.forward_with_cfg_tile(tx, tt, cy, CFG, data_info, tc_lq, tc_pre, latent_tiled_size=TILE,
                                           latent_tiled_overlap=OVERLAP, mask=mask)
        del model.forward
        io.update({"tile.x": tx, "tile.c_lq": tc_lq, "tile.c_pre": tc_pre, "tile.t": tt, "tile.out": tout})
        w = model._gaussian_weights(TILE, TILE, 1, "cpu")
        io["tile.weights"] = w[0, 0].clone()
        wx, wy = w[0, 0, 0], w[0, 0, :, 0]
        note("gaussian_weights",
             f"_gaussian_weights (float64) centres x at (W-1)/2 but y at H/2: for 16x16, along x w[0]={wx[0]:.6g} "
             f"== w[15]={wx[15]:.6g}, along y w[0]={wy[0]:.6g} vs w[15]={wy[15]:.6g}, w[1]={wy[1]:.6g} == "
             f"w[15]; weights(y, x) = exp(-(x-7.5)^2/(W^2 2 0.01)) exp(-(y-8)^2/(H^2 2 0.01)) / (2 pi 0.01); the "
             f"products noise_pred_tile * weights are float64, accumulated into float32 buffers")
        offs = []
        b, _, h, wd = tx.shape
        ts = min(TILE, min(h, wd))
        grid_rows = 0
        cur = 0
        while cur < wd:
            cur = max(grid_rows * ts - OVERLAP * grid_rows, 0) + ts
            grid_rows += 1
        grid_cols = 0
        cur = 0
        while cur < h:
            cur = max(grid_cols * ts - OVERLAP * grid_cols, 0) + ts
            grid_cols += 1
        ox = oy = 0
        for row in range(grid_rows):
            for col in range(grid_cols):
                if col < grid_cols - 1 or row < grid_rows - 1:
                    ox = max(row * ts - OVERLAP * row, 0)
                    oy = max(col * ts - OVERLAP * col, 0)
                if row == grid_rows - 1:
                    ox = wd - ts
                if col == grid_cols - 1:
                    oy = h - ts
                offs.append((oy, ox))
        note("tile_grid",
             f"latent 24x20 (HxW), tile 16, overlap 4: 'rows' step along x (width), 'cols' along y; tiles in order "
             f"row-major over (row=x, col=y), (y0, x0) = {offs}; each tile is one forward of the whole cfg batch "
             f"(x tile [2,4,16,16], c tiles [1,4,16,16]): {calls}; cfg is applied after stitching "
             f"(noise_pred / contributors)")
        for k in ("cfg.out", "tile.out"):
            print(f"{k}: max |.| {io[k].abs().max():.4f}")

        # sample loop
        torch.manual_seed(7)
        z0 = torch.randn(1, 4, 16, 12)
        z = z0.repeat(2, 1, 1, 1)
        diffusion = ref.IDDPM(str(4))
        rec = TimestepRecorder(model.forward_with_cfg)
        kwargs = dict(y=cy, cfg_scale=CFG, data_info=data_info, mask=mask, c_lq=c_lq, c_pre=c_pre)
        torch.manual_seed(8)
        with NoiseRecorder() as nr:
            samples = diffusion.p_sample_loop(rec, z.shape, z, clip_denoised=False, model_kwargs=kwargs,
                                              progress=False, device="cpu")
        io.update({"sample.z0": z0, "sample.noise": torch.stack(nr.draws), "sample.out": samples,
                   "sample.timesteps": torch.stack([r[0] for r in rec.ts]).long(),
                   "sample.betas": torch.from_numpy(np.asarray(diffusion.betas, dtype=np.float64))})
        note("sample_timesteps", f"IDDPM('4'): timestep_map {diffusion.timestep_map}, the model sees "
             f"{[int(r[0]) for r in rec.ts]} (int64); p_sample draws randn_like for every step, the last (t == 0) "
             f"unused; {len(nr.draws)} draws; betas {list(np.round(diffusion.betas, 8))}")
        print(f"sample.out: max |.| {samples.abs().max():.4f}")
        acp = np.cumprod(1 - np.asarray(diffusion.betas))
        note("sample_magnitude",
             f"sample.out reaches {samples.abs().max():.1f}: a random eps-model does not predict the noise, and at "
             f"t=999 pred_x0 = (x - sqrt(1-acp) eps) / sqrt(acp) with 1/sqrt(acp) = {1 / math.sqrt(acp[-1]):.1f}; "
             f"the single forwards stay O(1) (final_layer.linear scaled by {FINAL_SCALE}); compare the loops with a "
             f"relative tolerance")
        from diffusion.model.respace import space_timesteps

        def away(n, c):
            fs, cur, outl = (1 if c <= 1 else (n - 1) / (c - 1)), 0.0, []
            for _ in range(c):
                outl.append(int(math.floor(cur + 0.5)))
                cur += fs
            return set(outl)

        diff_counts = [c for c in range(1, 101) if space_timesteps(1000, str(c)) != away(1000, c)]
        note("space_timesteps_rounding",
             f"space_timesteps adds the float stride (n-1)/(c-1) repeatedly and rounds with Python's round (ties to "
             f"even): IDDPM('3') keeps {sorted(space_timesteps(1000, '3'))} (499.5 -> 500); rounding ties away from "
             f"zero instead differs for step counts {diff_counts} (of 1..100; 50, test.py's, agrees)")

    # SwinIR
    torch.manual_seed(0)
    swinir = ref.SwinIR(**SWINIR).eval()
    randomise(swinir, 2, skip=("relative_position_index", "attn_mask"))
    ssd = {k: v for k, v in swinir.state_dict().items()
           if not (k.endswith("relative_position_index") or k.endswith("attn_mask"))}
    print("swinir.safetensors keys:")
    for k, v in ssd.items():
        print(f"  {k} {list(v.shape)}")
    gs = torch.Generator().manual_seed(9)
    with torch.no_grad():
        try:
            swinir(torch.rand(1, 3, 80, 72, generator=gs))
            raise RuntimeError("80x72 ran")
        except RuntimeError as e:
            note("swinir_80x72", "SwinIR pads the image (reflect) to a multiple of window_size (4), not of "
                 "window_size * unshuffle_scale, before PixelUnshuffle(8); 80x72 -> 10x9 tokens, which "
                 f"window_partition cannot split: {str(e).splitlines()[0]}")
        sin = torch.rand(1, 3, 64, 96, generator=gs)
        sout = swinir(sin)
        io.update({"swinir.in": sin, "swinir.out": sout})
        note("swinir_crop", f"swinir.out shape {list(sout.shape)}: the final crop x[:, :, :H*sf, :W*sf] is a no-op "
             "with unshuffle (the output is H x W already); the shifted blocks (odd index, shift 2) use a mask "
             "computed for the actual 8x12 token grid (input_resolution is img_size 64 x 64); "
             f"out range [{sout.min():.3f}, {sout.max():.3f}], clamped fraction "
             f"{((sout < 0) | (sout > 1)).float().mean():.3f}")

    # VAE (sd_tiny's)
    vdir = os.path.join(FIX, "sd_tiny", "vae")
    vae = ref.AutoencoderKL.from_config(json.load(open(os.path.join(vdir, "config.json"))))
    vae.load_state_dict(read_safetensors(os.path.join(vdir, "diffusion_pytorch_model.safetensors")))
    vae.eval()

    rng = np.random.default_rng(10)
    for tag, (lw, lh), seed in (("p1", (32, 32), 11), ("p2", (48, 32), 12)):
        lq = lq_image(rng, lw, lh)
        cap = torch.from_numpy(rng.standard_normal((1, 8, 32))).float()
        emb_mask = torch.tensor([[1, 1, 1, 1, 1, 1, 0, 0]])
        with torch.no_grad():
            img_lq, h0, w0 = ref.util_image.PIL2Tensor(Image.fromarray(lq), upscale=4, min_size=MIN_SIZE)
            img_lq = img_lq.unsqueeze(0)[:, :3, :, :]
            img_pre = torch.clamp(swinir(img_lq), 0, 1.0)
            txt_fea = cap[None]
            attention_mask = emb_mask[None]
            latent_lq = vae.encode(2 * img_lq - 1.0).latent_dist.mode() * SCALE_FACTOR
            latent_pre = vae.encode(2 * img_pre - 1.0).latent_dist.mode() * SCALE_FACTOR
            torch.manual_seed(seed)
            z0 = torch.randn(1, 4, latent_lq.shape[2], latent_lq.shape[3])
            z = z0.repeat(2, 1, 1, 1)
            null_y = model.y_embedder.y_embedding[None].repeat(1, 1, 1)[:, None]
            diffusion = ref.IDDPM(str(3))
            kw = dict(y=torch.cat([txt_fea, null_y]), cfg_scale=CFG, data_info=data_info, mask=attention_mask,
                      c_lq=latent_lq, c_pre=latent_pre)
            tiled = z.shape[2:] != (MIN_SIZE // 8, MIN_SIZE // 8)
            if tiled:
                fn = model.forward_with_cfg_tile
                kw.update(latent_tiled_size=TILE, latent_tiled_overlap=OVERLAP)
            else:
                fn = model.forward_with_cfg
            rec = TimestepRecorder(fn)
            with NoiseRecorder() as nr:
                samples = diffusion.p_sample_loop(rec, z.shape, z, clip_denoised=False, model_kwargs=kw,
                                                  progress=False, device="cpu")
            samples, _ = samples.chunk(2, dim=0)
            decoded = (vae.decode(samples / SCALE_FACTOR).sample + 1) / 2
            hq = ref.wavelet_reconstruction(decoded, img_pre)
            hq = hq.clamp(0, 1.0)[0]
            out_img = np.asarray(ref.util_image.Tensor2PIL(hq, h0, w0))
            # Tensor2PIL: bicubic interpolate to (h0, w0) (same size here), * 255, truncation to uint8
            up = torch.nn.functional.interpolate(hq[None], size=(h0, w0), mode="bicubic")[0]
            trunc_vs_round = int((np.clip(np.round(hq.permute(1, 2, 0).numpy() * 255), 0, 255).astype(np.uint8)
                                  != out_img).sum())
        io.update({f"{tag}.lq": torch.from_numpy(lq), f"{tag}.y": cap, f"{tag}.mask": emb_mask.float(),
                   f"{tag}.img_lq": img_lq, f"{tag}.img_pre": img_pre, f"{tag}.latent_lq": latent_lq,
                   f"{tag}.latent_pre": latent_pre, f"{tag}.z0": z0, f"{tag}.noise": torch.stack(nr.draws),
                   f"{tag}.samples": samples, f"{tag}.decoded": decoded, f"{tag}.hq": hq,
                   f"{tag}.out": torch.from_numpy(out_img.copy()), f"{tag}.h0": torch.tensor([h0]),
                   f"{tag}.w0": torch.tensor([w0])})
        note(f"{tag}_pipeline",
             f"LQ {lw}x{lh} -> img {list(img_lq.shape)}, h0 {h0} w0 {w0}, latent {list(latent_lq.shape)}, "
             f"{'tiled' if tiled else 'forward_with_cfg'}, timesteps {[int(r[0]) for r in rec.ts]}, "
             f"img_pre clamped fraction {((swinir(img_lq) < 0) | (swinir(img_lq) > 1)).float().mean():.3f}, "
             f"samples max {samples.abs().max():.3f}, decoded range [{decoded.min():.3f}, {decoded.max():.3f}], "
             f"Tensor2PIL same-size bicubic moves values by {(up - hq).abs().max():.3g}, and its truncation "
             f"differs from rounding in {trunc_vs_round} of {out_img.size} values")

    # ------------------------------------------------------------------------- write
    tdir = os.path.join(FIX, "dreamclear_tiny")
    if os.path.exists(tdir):
        shutil.rmtree(tdir)
    os.makedirs(os.path.join(tdir, "vae"))
    meta = {"reference": f"shallowdream204/DreamClear@{COMMIT}", "torch": torch.__version__}
    st_write.save(os.path.join(tdir, "dit.safetensors"), {k: v.numpy() for k, v in dit_sd.items()}, meta)
    st_write.save(os.path.join(tdir, "swinir.safetensors"), {k: v.numpy() for k, v in ssd.items()}, meta)
    for f in ("config.json", "diffusion_pytorch_model.safetensors"):
        shutil.copyfile(os.path.join(vdir, f), os.path.join(tdir, "vae", f))
    cfg_json = {
        "format": "rass-dreamclear", "version": 1, "image_size": MIN_SIZE, "scale_factor": SCALE_FACTOR,
        "diffusion": {"train_steps": 1000, "beta_schedule": "linear"},
        "dit": {"hidden_size": HIDDEN, "depth": DIT["depth"], "num_heads": HEADS, "patch_size": DIT["patch_size"],
                "in_channels": DIT["in_channels"], "learn_sigma": True, "mlp_ratio": DIT["mlp_ratio"],
                "caption_channels": DIT["caption_channels"], "model_max_length": DIT["model_max_length"],
                "lewei_scale": DIT["lewei_scale"], "base_size": int(model.base_size), "copy_blocks_num": COPY_BLOCKS,
                "num_experts": len(model.am_lq[0].experts)},
        "swinir": {"in_chans": SWINIR["in_chans"], "embed_dim": SWINIR["embed_dim"], "depths": SWINIR["depths"],
                   "num_heads": SWINIR["num_heads"], "window_size": SWINIR["window_size"],
                   "mlp_ratio": float(SWINIR["mlp_ratio"]), "img_size": SWINIR["img_size"], "sf": SWINIR["sf"],
                   "unshuffle_scale": SWINIR["unshuffle_scale"], "upsampler": SWINIR["upsampler"],
                   "resi_connection": SWINIR["resi_connection"], "img_range": SWINIR["img_range"]}}
    with open(os.path.join(tdir, "dreamclear.json"), "w") as f:
        json.dump(cfg_json, f, indent=2)
        f.write("\n")

    def arr(v):
        v = v.detach()
        if v.dtype in (torch.float64, torch.int64, torch.uint8):
            return v.numpy()
        return v.float().numpy()

    io_meta = dict(meta, quirks=json.dumps(quirks), tile_offsets_yx=json.dumps(offs))
    st_write.save(os.path.join(FIX, "dreamclear_io.safetensors"), {k: arr(v) for k, v in io.items()}, io_meta)
    print("dreamclear_io.safetensors:")
    for k in sorted(io):
        print(f"  {k} {str(io[k].dtype).replace('torch.', '')} {list(io[k].shape)}")
    for root, _, files in os.walk(tdir):
        for f in sorted(files):
            p = os.path.join(root, f)
            print(f"wrote {os.path.relpath(p, ROOT)} ({os.path.getsize(p)} bytes)")
    p = os.path.join(FIX, "dreamclear_io.safetensors")
    print(f"wrote {os.path.relpath(p, ROOT)} ({os.path.getsize(p)} bytes)")

    # For the CLI test: p1's LQ image and its caption in the format of DreamClear's
    # tools/extract_t5_features.py (np.savez_compressed: caption_feature float32
    # [1, L, C], attention_mask int64 [1, L]); written with a fixed ZIP date so
    # reruns give the same bytes.
    Image.fromarray(io["p1.lq"].numpy()).save(os.path.join(FIX, "dreamclear_lq.png"))
    npz = os.path.join(FIX, "dreamclear_caption.npz")
    with zipfile.ZipFile(npz, "w") as zf:
        for name, a in (("caption_feature", io["p1.y"].numpy().astype(np.float32)),
                        ("attention_mask", io["p1.mask"].numpy().astype(np.int64))):
            buf = io_bytes.BytesIO()
            np.lib.format.write_array(buf, a, allow_pickle=False)
            zf.writestr(zipfile.ZipInfo(name + ".npy", date_time=(1980, 1, 1, 0, 0, 0)), buf.getvalue(),
                        compress_type=zipfile.ZIP_DEFLATED)
    for p in (os.path.join(FIX, "dreamclear_lq.png"), npz):
        print(f"wrote {os.path.relpath(p, ROOT)} ({os.path.getsize(p)} bytes)")


if __name__ == "__main__":
    main()
