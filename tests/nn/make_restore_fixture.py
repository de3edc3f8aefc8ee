#!/usr/bin/env python3
"""Golden fixture of rass-restore: a tiny SD 2.x folder built by diffusers'
own classes, an OSEDiff-style LoRA made by peft, and the restored images the
reference computes from them (tests/nn/test_restore.cpp reproduces them).

Runs the released packages in a virtual environment outside the repository
(the same one as make_lora_fixture.py, plus torchvision for OSEDiff's
ToTensor/ToPILImage) and OSEDiff's own colour-fix module, imported from a
checkout of github:cswry/OSEDiff given in OSEDIFF_SRC (not part of this
repository; commit fcc4f09c7ed66a9bc0ba9433940d76b343142426 was used):

    /tmp/loravenv/bin/pip install --no-deps torchvision==0.16.2
    OSEDIFF_SRC=/path/to/OSEDiff /tmp/loravenv/bin/python tests/nn/make_restore_fixture.py tests/fixtures/nn

Writes, in the given folder:
  sd_tiny/{unet,vae,text_encoder,tokenizer,scheduler}/   save_pretrained(safe_serialization=True)
      tiny configs of the SD 2.x architecture (VAE with 4 levels: latents are
      1/8 of the image, as SD's); the scheduler config is SD 2.1-base's
      (clip_sample false); the tokenizer is tests/fixtures/text/tiny-clip.
  sd_tiny_lora.safetensors
      OSEDiff's UNet LoRA as its checkpoint holds it: the three adapters
      default_encoder / default_decoder / default_others (rank 4, targets
      chosen by OSEDiff's training rule, lora_alpha left at PEFT's default 8),
      non-zero random B, conv_in fully trained (conv_in.base_layer.*); the
      alpha 8 is written in the metadata as a converter would.
  restore_lq.png       the LQ input (37x26 RGB)
  restore_ref.safetensors
      per case <c>: <c>.input (the resized input, uint8 HxWx3), <c>.ids (the
      77 token ids), <c>.latent (x0 [4,h,w]), <c>.decoded (VAE output *0.5+0.5,
      float [3,H,W]), <c>.out (the final uint8 HxWx3 image); case "sample" also
      <c>.noise (the N(0,1) draw of latent_dist.sample()). The metadata "cases"
      is the JSON list of every case's settings.

The reference pipeline is OSEDiff's test_osediff.py / OSEDiff_test.forward:
PIL resizes (the small-image rule, bicubic upscale, LANCZOS down to a
multiple of 8), ToTensor*2-1, vae.encode(...).latent_dist (mean, or
mean + std*noise) * scaling_factor, the UNet with all three adapters active
(unmerged: PEFT's forward), DDPMScheduler.step with set_timesteps(1) (or
z - eps for the residual form), vae.decode(x0 / scaling_factor).clamp(-1, 1),
ToPILImage(x*0.5+0.5), then adain_color_fix / wavelet_color_fix on PIL images.
"""
import json
import os
import shutil
import sys

import numpy as np
import torch
from PIL import Image
from safetensors.torch import save_file
from torchvision import transforms

sys.path.insert(0, os.environ.get("OSEDIFF_SRC", "/tmp/osediff_src"))
from my_utils.wavelet_color_fix import adain_color_fix, wavelet_color_fix  # noqa: E402

import diffusers  # noqa: E402
import peft  # noqa: E402
from diffusers import AutoencoderKL, DDPMScheduler, UNet2DConditionModel  # noqa: E402
from peft import LoraConfig  # noqa: E402
from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer  # noqa: E402

out = sys.argv[1]
here = os.path.dirname(os.path.abspath(__file__))
tok_src = os.path.join(here, "..", "fixtures", "text", "tiny-clip")
sd = os.path.join(out, "sd_tiny")
shutil.rmtree(sd, ignore_errors=True)

torch.manual_seed(3)
unet = UNet2DConditionModel(sample_size=8, in_channels=4, out_channels=4,
                            down_block_types=["CrossAttnDownBlock2D", "DownBlock2D"],
                            up_block_types=["UpBlock2D", "CrossAttnUpBlock2D"],
                            block_out_channels=[8, 16], layers_per_block=1, norm_num_groups=4,
                            cross_attention_dim=16, attention_head_dim=[2, 2], use_linear_projection=True).eval()
vae = AutoencoderKL(in_channels=3, out_channels=3, latent_channels=4,
                    down_block_types=["DownEncoderBlock2D"] * 4, up_block_types=["UpDecoderBlock2D"] * 4,
                    block_out_channels=[8, 8, 16, 16], layers_per_block=1, norm_num_groups=4,
                    sample_size=64, scaling_factor=0.18215).eval()
tok = CLIPTokenizer.from_pretrained(tok_src)
clip = CLIPTextModel(CLIPTextConfig(vocab_size=len(tok), hidden_size=16, intermediate_size=32, num_hidden_layers=2,
                                    num_attention_heads=2, max_position_embeddings=77, hidden_act="gelu",
                                    bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
                                    pad_token_id=tok.pad_token_id)).eval()
with torch.no_grad():
    for m in (unet, vae):
        for n, p in m.named_parameters():
            if "norm" in n:
                p.copy_(torch.randn_like(p) * 0.2 + (1.0 if n.endswith("weight") else 0.0))
            elif n.endswith("conv_out.weight") or "proj_out" in n:
                p.copy_(torch.randn_like(p) * 0.1)  # zero-initialised by diffusers; make them count
unet.save_pretrained(os.path.join(sd, "unet"), safe_serialization=True)
vae.save_pretrained(os.path.join(sd, "vae"), safe_serialization=True)
clip.save_pretrained(os.path.join(sd, "text_encoder"), safe_serialization=True)
os.makedirs(os.path.join(sd, "tokenizer"))
for f in os.listdir(tok_src):
    shutil.copy(os.path.join(tok_src, f), os.path.join(sd, "tokenizer", f))
os.makedirs(os.path.join(sd, "scheduler"))
# SD 2.1-base's scheduler/scheduler_config.json
json.dump({"_class_name": "PNDMScheduler", "_diffusers_version": "0.10.0.dev0", "beta_end": 0.012,
           "beta_schedule": "scaled_linear", "beta_start": 0.00085, "clip_sample": False,
           "num_train_timesteps": 1000, "prediction_type": "epsilon", "set_alpha_to_one": False,
           "skip_prk_steps": True, "steps_offset": 1, "trained_betas": None},
          open(os.path.join(sd, "scheduler", "scheduler_config.json"), "w"), indent=2)

# OSEDiff's LoRA targets (train_osediff.py): weights named by a grep list,
# split by where they sit.
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
with torch.no_grad():
    for n, p in unet.named_parameters():
        if "lora_B" in n:
            p.normal_(0, 0.2)
        elif "conv_in" in n and "lora" not in n:
            p.add_(torch.randn_like(p) * 0.05)  # "fully trained"
lora = {n: p.detach().contiguous() for n, p in unet.named_parameters() if "lora" in n or "conv_in" in n}
save_file(lora, os.path.join(out, "sd_tiny_lora.safetensors"), {"format": "pt", "lora_alpha": "8"})
print("lora targets: encoder", len(enc), "decoder", len(dec), "others", len(oth), "tensors", len(lora))

# The LQ input: smooth colour fields plus texture.
rng = np.random.RandomState(5)
W, H = 37, 26
yy, xx = np.mgrid[0:H, 0:W]
lq = np.stack([128 + 90 * np.sin(xx / 5.0 + c) * np.cos(yy / 7.0 - c) for c in range(3)], -1)
lq = np.clip(lq + rng.randn(H, W, 3) * 12, 0, 255).astype(np.uint8)
Image.fromarray(lq).save(os.path.join(out, "restore_lq.png"))

sched = DDPMScheduler.from_pretrained(os.path.join(sd, "scheduler"))
sched.set_timesteps(1)
sf = vae.config.scaling_factor


def prepare(img, upscale, process_size):
    """test_osediff.py's resizing (its output resize back is a no-op there)."""
    w, h = img.size
    if w < process_size // upscale or h < process_size // upscale:
        scale = (process_size // upscale) / min(w, h)
        img = img.resize((int(scale * w), int(scale * h)))
    img = img.resize((img.size[0] * upscale, img.size[1] * upscale))
    return img.resize((img.width - img.width % 8, img.height - img.height % 8), Image.LANCZOS)


CASES = [
    dict(name="osediff", upscale=2, process_size=64, timestep=999, formula="ddpm", color_fix="adain",
         vae_mode=True, prompt="dog, grass, ,"),
    dict(name="scr_ddpm", upscale=1, process_size=16, timestep=1, formula="ddpm", color_fix="wavelet",
         vae_mode=True, prompt="dog grass"),
    dict(name="scr_residual", upscale=1, process_size=16, timestep=1, formula="residual", color_fix="none",
         vae_mode=True, prompt="dog, a photo,"),
    dict(name="sample", upscale=1, process_size=16, timestep=999, formula="ddpm", color_fix="adain",
         vae_mode=False, prompt="dog, grass, ,"),
]
tensors = {}
src = Image.open(os.path.join(out, "restore_lq.png")).convert("RGB")
for c in CASES:
    n = c["name"]
    img = prepare(src, c["upscale"], c["process_size"])
    ids = tok(c["prompt"], max_length=77, padding="max_length", truncation=True, return_tensors="pt").input_ids
    with torch.no_grad():
        emb = clip(ids)[0]
        x = transforms.ToTensor()(img)[None] * 2 - 1
        dist = vae.encode(x).latent_dist
        if c["vae_mode"]:
            z = dist.mode() * sf
        else:
            noise = torch.randn(dist.mean.shape, generator=torch.Generator().manual_seed(11))
            tensors[n + ".noise"] = noise[0].contiguous()
            z = (dist.mean + dist.std * noise) * sf
        t = torch.tensor([c["timestep"]]).long()
        eps = unet(z, t, encoder_hidden_states=emb).sample
        x0 = sched.step(eps, t, z, return_dict=True).prev_sample if c["formula"] == "ddpm" else z - eps
        decoded = vae.decode(x0 / sf).sample.clamp(-1, 1)
        pil = transforms.ToPILImage()(decoded[0] * 0.5 + 0.5)
        if c["color_fix"] == "adain":
            pil = adain_color_fix(target=pil, source=img)
        elif c["color_fix"] == "wavelet":
            pil = wavelet_color_fix(target=pil, source=img)
    tensors[n + ".input"] = torch.from_numpy(np.asarray(img).copy())
    tensors[n + ".ids"] = ids[0].contiguous()
    tensors[n + ".latent"] = x0[0].contiguous()
    tensors[n + ".decoded"] = (decoded[0] * 0.5 + 0.5).contiguous()
    tensors[n + ".out"] = torch.from_numpy(np.asarray(pil).copy())
    d = tensors[n + ".decoded"]
    print(n, "input", img.size, "latent", tuple(x0.shape), "decoded mean/std %.3f %.3f" % (d.mean(), d.std()),
          "clamped %.3f" % ((d <= 0) | (d >= 1)).float().mean())
save_file(tensors, os.path.join(out, "restore_ref.safetensors"),
          {"cases": json.dumps(CASES), "torch": torch.__version__, "diffusers": diffusers.__version__,
           "peft": peft.__version__})
