#!/usr/bin/env python3
"""Golden fixture of rass-segment and scripts/convert_rass.py: a tiny RAS
model built by the reference's own classes, its checkpoint in the structure of
the released rass.pth, the folder convert_rass.py makes of it, and what the
reference computes (tests/nn/test_segment.cpp and tests/cli/test_convert_rass.sh
reproduce it).

Runs the released packages in the virtual environment of the other fixtures
(torch 2.1.2, diffusers 0.25.1, peft 0.7.1, transformers 4.36.2, torchvision
0.16.2, fvcore) with checkouts outside the repository:
    RASS_SRC=/path/to/Ka1Guan/RASS MASK2FORMER_SRC=/path/to/Mask2Former \
      /tmp/loravenv/bin/python tests/nn/make_ras_fixture.py tests/fixtures/nn
(tests/nn/rass_reference.py and mask2former_reference.py say what is stood in.)

The reference code asks for CUDA with tensor.to('cuda'); torch.Tensor.to is
wrapped here to keep such tensors on the CPU (nothing else changes).
VAE sampling: latent_dist.sample() is replaced by the mean (the C++ side runs
with --vae-mode): the sample's N(0,1) draw is a separate generator on each
side.

Writes, in the given folder:
  ras_sd/          the "SD 2.1-base folder" a user gives the converter: tiny
                   unet (the plain UNet, before SCR), vae, text_encoder,
                   tokenizer (tests/fixtures/text/tiny-clip), scheduler
  ras_tiny.pth     {"model": state dict, "iteration": 7}: keys as in rass.pth
                   (REFERENCE.md section 4): backbone.feature_extractor.sd.{unet
                   (base_layer + lora_{A,B}.default_*_s2), vae, text_encoder},
                   backbone.feature_extractor.{ram,dape}.* (fp16, with
                   loralib-style qkv.lora_A/B keys), backbone.jpeger.*,
                   backbone.feature_extractor.feature_projections.*,
                   sem_seg_head.*, criterion.empty_weight
  ras_tiny/        scripts/convert_rass.py ras_tiny.pth --sd ras_sd -o ras_tiny --no-plain
Only ras_tiny/, ras_lq.png and ras_ref.safetensors are committed:
tests/cli/test_convert_rass.sh rebuilds a checkpoint of rass.pth's structure
(and an SD folder) from ras_tiny/ and checks the converter gives it back.
  ras_lq.png       the input image (40x30)
  ras_ref.safetensors
      proj.tap<i> (the six taps of the whole padded image), proj.<res>
      (FeatureProjection.forward_features of them); per case <c> in
      {slide, whole}: ids, <c>.scores [150, 30, 40] (semantic inference
      after sem_seg_postprocess), <c>.labels (argmax, int32); metadata: the
      prompt tags, min/max size of the resize policy used (64, 96).
"""
import json
import os
import shutil
import subprocess
import sys

import numpy as np
import torch
from PIL import Image
from safetensors.torch import save_file
from torch.nn import functional as F

here = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, here)
import mask2former_reference as m2f  # noqa: E402
import rass_reference as rr  # noqa: E402

_to = torch.Tensor.to


def _cpu_to(self, *a, **k):
    if a and isinstance(a[0], str) and a[0].startswith("cuda"):
        a = ("cpu",) + a[1:]
    if isinstance(k.get("device"), str) and k["device"].startswith("cuda"):
        k["device"] = "cpu"
    return _to(self, *a, **k)


torch.Tensor.to = _cpu_to

TAGS = "tag one, tag two"
MIN_SIZE, MAX_SIZE = 64, 96
out = sys.argv[1]
repo = os.path.abspath(os.path.join(here, "..", ".."))
state = rr.setup(TAGS)
from diffusers import DDPMScheduler  # noqa: E402
from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer  # noqa: E402
import restoration_adaptation.models.vae as rvae  # noqa: E402

rvae.DiagonalGaussianDistribution.sample = lambda self, generator=None: self.mean

torch.manual_seed(5)
tok = CLIPTokenizer.from_pretrained(os.path.join(here, "..", "fixtures", "text", "tiny-clip"))
# The tiny-seg preset's sizes (rass-model init --preset tiny-seg): 4 UNet levels, 4 VAE levels.
unet = state["UNet2DConditionModel"](
    sample_size=8, in_channels=4, out_channels=4,
    down_block_types=["CrossAttnDownBlock2D"] * 3 + ["DownBlock2D"],
    up_block_types=["UpBlock2D"] + ["CrossAttnUpBlock2D"] * 3,
    block_out_channels=[16, 16, 32, 32], layers_per_block=1, norm_num_groups=8, cross_attention_dim=32,
    attention_head_dim=[2, 2, 2, 2], use_linear_projection=True).eval()
vae = state["AutoencoderKL"](
    in_channels=3, out_channels=3, latent_channels=4, down_block_types=["DownEncoderBlock2D"] * 4,
    up_block_types=["UpDecoderBlock2D"] * 4, block_out_channels=[8, 16, 16, 16], layers_per_block=1,
    norm_num_groups=4, sample_size=64, scaling_factor=0.18215).eval()
clip = CLIPTextModel(CLIPTextConfig(vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                                    num_attention_heads=4, max_position_embeddings=77, hidden_act="gelu",
                                    bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
                                    pad_token_id=tok.pad_token_id)).eval()

sd = os.path.join(out, "ras_sd")
shutil.rmtree(sd, ignore_errors=True)
unet.save_pretrained(os.path.join(sd, "unet"), safe_serialization=True)
vae.save_pretrained(os.path.join(sd, "vae"), safe_serialization=True)
clip.save_pretrained(os.path.join(sd, "text_encoder"), safe_serialization=True)
tok.save_pretrained(os.path.join(sd, "tokenizer"))
sched = DDPMScheduler(beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012, clip_sample=False,
                      steps_offset=1)
sched.save_pretrained(os.path.join(sd, "scheduler"))

# The SCR LoRA merged (rass.pth's UNet is not the SD folder's): a random change of every weight.
with torch.no_grad():
    for n, p in unet.named_parameters():
        p.add_(torch.randn_like(p) * 0.02)

gen = rr.build_generator(tok, clip, vae, unet)
with torch.no_grad():
    for n, p in gen.unet.named_parameters():
        if "lora_B" in n:
            p.normal_(0, 0.05)  # PEFT's gaussian init leaves B = 0
dims = [16, 16, 32, 32, 16, 16]
fpm = rr.build_feature_projection(gen, dims, [4, 8, 32, 16, 8, 8], projection_dim=128)
with torch.no_grad():
    for n, p in fpm.feature_projections.named_parameters():
        if n.endswith("norm.weight"):
            p.copy_(1 + 0.1 * torch.randn_like(p))
        elif n.endswith("norm.bias"):
            p.copy_(0.1 * torch.randn_like(p))
        else:
            p.normal_(0, (2.0 / p[0].numel()) ** 0.5)
fpm.eval()

head_cfg = dict(num_queries=8, hidden_dim=32, nheads=4, dim_feedforward=64, dec_layers=4, mask_dim=32, conv_dim=32,
                norm_groups=32, enc_layers=1, enc_dim_feedforward=64, enc_nheads=4, enc_n_points=4,
                in_channels=[128] * 4)
head = m2f.build_head(head_cfg)

# ---- the checkpoint, as rass.pth holds it ----------------------------------
model = {}
for k, v in fpm.state_dict().items():
    model["backbone.feature_extractor." + k] = v.clone()
g = torch.Generator().manual_seed(9)
for tagger in ("ram", "dape"):  # RAM/DAPE: fp16, loralib-style LoRA keys (dropped by the converter)
    base = f"backbone.feature_extractor.{tagger}.visual_encoder.layers.0.blocks.0.attn.qkv"
    model[base + ".weight"] = torch.randn(12, 4, generator=g).half()
    model[base + ".lora_A"] = torch.randn(2, 4, generator=g).half()
    model[base + ".lora_B"] = torch.randn(12, 2, generator=g).half()
    model[f"backbone.feature_extractor.{tagger}.label_embed"] = torch.randn(5, 4, generator=g).half()
model["backbone.jpeger.c_quantize.c_table"] = torch.rand(8, 8, generator=g)
model["backbone.jpeger.y_quantize.y_table"] = torch.rand(8, 8, generator=g)
for k, v in head.state_dict().items():
    model["sem_seg_head." + k] = v.clone()
ew = torch.ones(151)
ew[-1] = 0.1
model["criterion.empty_weight"] = ew
pth = os.path.join(out, "ras_tiny.pth")
torch.save({"model": model, "iteration": 7}, pth)

# ---- the reference forward -------------------------------------------------
img = Image.open(os.path.join(repo, "examples", "images", "astronaut.png")).convert("RGB").resize((40, 30), Image.BICUBIC)
img.save(os.path.join(out, "ras_lq.png"))
H, W = 30, 40


def resize_shortest_edge(im, size, max_size):
    """detectron2 ResizeShortestEdge.get_output_shape + ResizeTransform.apply_image
    (PIL, Image.BILINEAR) for a uint8 image."""
    w, h = im.size
    scale = size * 1.0 / min(h, w)
    newh, neww = (size, scale * w) if h < w else (scale * h, size)
    if max(newh, neww) > max_size:
        scale = max_size * 1.0 / max(newh, neww)
        newh, neww = newh * scale, neww * scale
    return im.resize((int(neww + 0.5), int(newh + 0.5)), Image.BILINEAR)


proc = resize_shortest_edge(img, MIN_SIZE, MAX_SIZE)
ph, pw = proc.size[1], proc.size[0]
t = torch.as_tensor(np.ascontiguousarray(np.asarray(proc).transpose(2, 0, 1))).float()
# ImageList.from_tensors(size_divisibility=8): zero pad bottom/right of the 0..255 tensor.
Hp, Wp = (ph + 7) // 8 * 8, (pw + 7) // 8 * 8
padded = torch.zeros(1, 3, Hp, Wp)
padded[0, :, :ph, :pw] = t
x = padded / 255.0 * 2 - 1  # RASS.PairedSROnlineTxtDataset at test: gt*2-1


def postprocess(outputs):
    """MaskFormer_rass.forward at inference + detectron2 sem_seg_postprocess."""
    masks = F.interpolate(outputs["pred_masks"], size=(Hp, Wp), mode="bilinear", align_corners=False)
    r = m2f.semantic_inference(outputs["pred_logits"], masks)[0]
    r = r[:, :ph, :pw].expand(1, -1, -1, -1)
    return F.interpolate(r, size=(H, W), mode="bilinear", align_corners=False)[0]


tensors = {}
with torch.no_grad():
    batch = {"conditioning_pixel_values": x, "output_pixel_values": x}
    taps = gen(x, batch={"prompt": [TAGS + ", "]})
    for i, tp in enumerate(taps):
        tensors[f"proj.tap{i}"] = tp.contiguous()
    proj = fpm.forward_features(taps, x.shape[-2:])
    for k, v in proj.items():
        tensors[f"proj.{k}"] = v.contiguous()
    cases = {"slide": lambda: fpm.slide_forward(dict(batch)), "whole": lambda: fpm.single_forward(x, dict(batch))}
    for name, run in cases.items():
        feats = run()
        scores = postprocess(head(feats))
        tensors[f"{name}.scores"] = scores.contiguous()
        tensors[f"{name}.labels"] = scores.argmax(0).to(torch.int32)
ids = tok(" ".join(TAGS.split(",")), max_length=tok.model_max_length, padding="max_length", truncation=True).input_ids
tensors["ids"] = torch.tensor(ids, dtype=torch.int64)
save_file(tensors, os.path.join(out, "ras_ref.safetensors"),
          {"tags": TAGS, "min_size_test": str(MIN_SIZE), "max_size_test": str(MAX_SIZE),
           "processed": json.dumps([pw, ph]), "padded": json.dumps([Wp, Hp])})

folder = os.path.join(out, "ras_tiny")
shutil.rmtree(folder, ignore_errors=True)
torch.Tensor.to = _to
subprocess.run([sys.executable, os.path.join(repo, "scripts", "convert_rass.py"), pth, "--sd", sd, "-o", folder,
                "--head-config", json.dumps(head_cfg), "--no-plain"], check=True)
print("wrote", out, "processed", (pw, ph), "padded", (Wp, Hp))
