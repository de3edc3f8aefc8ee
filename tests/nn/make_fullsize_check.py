#!/usr/bin/env python3
"""Full-size parity check (not part of `make test`): the SD 2.1-base UNet,
VAE and text-encoder configs with random weights, built by the reference
(diffusers v0.25.1 / transformers sources, see reference_env.py), written as a
diffusers folder with inputs and reference outputs (.npy). scripts/check-fullsize.sh
then runs `rass-model run` on the same inputs and compares.

    DIFFUSERS_SRC=... TRANSFORMERS_SRC=... /usr/bin/python3 tests/nn/make_fullsize_check.py OUT_DIR
"""
import json
import os
import sys
import time

import numpy as np

import reference_env

reference_env.setup("DIFFUSERS_SRC")
sys.path.insert(0, os.environ["TRANSFORMERS_SRC"])
import torch  # noqa: E402
from diffusers.models import AutoencoderKL, UNet2DConditionModel  # noqa: E402
from transformers.models.clip.configuration_clip import CLIPTextConfig  # noqa: E402
from transformers.models.clip.modeling_clip import CLIPTextModel  # noqa: E402

import st_write  # noqa: E402

out = sys.argv[1]
torch.set_num_threads(os.cpu_count())
torch.manual_seed(0)
UNET = dict(sample_size=64, in_channels=4, out_channels=4,
            down_block_types=["CrossAttnDownBlock2D"] * 3 + ["DownBlock2D"],
            up_block_types=["UpBlock2D"] + ["CrossAttnUpBlock2D"] * 3,
            block_out_channels=[320, 640, 1280, 1280], layers_per_block=2, attention_head_dim=[5, 10, 20, 20],
            cross_attention_dim=1024, use_linear_projection=True, norm_num_groups=32, norm_eps=1e-5,
            flip_sin_to_cos=True, freq_shift=0, upcast_attention=False)
VAE = dict(in_channels=3, out_channels=3, latent_channels=4, down_block_types=["DownEncoderBlock2D"] * 4,
           up_block_types=["UpDecoderBlock2D"] * 4, block_out_channels=[128, 256, 512, 512], layers_per_block=2,
           norm_num_groups=32, sample_size=768, act_fn="silu", scaling_factor=0.18215)
CLIP = dict(vocab_size=49408, hidden_size=1024, intermediate_size=4096, num_hidden_layers=23, num_attention_heads=16,
            max_position_embeddings=77, hidden_act="gelu", bos_token_id=0, eos_token_id=2, pad_token_id=1,
            projection_dim=512, layer_norm_eps=1e-5)


def save(module, folder, fname, config):
    os.makedirs(folder, exist_ok=True)
    json.dump(config, open(os.path.join(folder, "config.json"), "w"), indent=1)
    st_write.save(os.path.join(folder, fname), {k: v.numpy() for k, v in module.state_dict().items()}, {"format": "pt"})


with torch.no_grad():
    unet = UNet2DConditionModel(**UNET).eval()
    for name, p in unet.named_parameters():
        if name.endswith("conv_out.weight") or "proj_out" in name:
            p.copy_(torch.randn_like(p) * 0.02)  # zero at init in diffusers
    save(unet, os.path.join(out, "unet"), "diffusion_pytorch_model.safetensors", dict(UNET, _class_name="UNet2DConditionModel"))
    z = torch.randn(1, 4, 64, 64)
    ctx = torch.randn(1, 77, 1024)
    t0 = time.time()
    eps = unet(z, torch.tensor([999]), encoder_hidden_states=ctx).sample
    print(f"reference UNet forward 64x64: {time.time() - t0:.1f} s")
    np.save(os.path.join(out, "z.npy"), z.numpy())
    np.save(os.path.join(out, "ctx.npy"), ctx.numpy())
    np.save(os.path.join(out, "unet_out.npy"), eps.numpy())
    del unet

    vae = AutoencoderKL(**VAE).eval()
    save(vae, os.path.join(out, "vae"), "diffusion_pytorch_model.safetensors", dict(VAE, _class_name="AutoencoderKL"))
    x = torch.rand(1, 3, 256, 256) * 2 - 1
    t0 = time.time()
    mean = vae.encode(x).latent_dist.mean
    print(f"reference VAE encode 256x256: {time.time() - t0:.1f} s")
    zl = torch.randn(1, 4, 32, 32)
    dec = vae.decode(zl).sample
    np.save(os.path.join(out, "x.npy"), x.numpy())
    np.save(os.path.join(out, "vae_mean.npy"), mean.numpy())
    np.save(os.path.join(out, "zl.npy"), zl.numpy())
    np.save(os.path.join(out, "vae_dec.npy"), dec.numpy())
    del vae

    clip = CLIPTextModel(CLIPTextConfig(**CLIP)).eval()
    save(clip, os.path.join(out, "text_encoder"), "model.safetensors", dict(CLIP, architectures=["CLIPTextModel"]))
    ids = torch.randint(3, 49406, (1, 77))
    ids[0, 0], ids[0, 20], ids[0, 21:] = 49406, 49407, 0
    hid = clip(ids).last_hidden_state
    np.save(os.path.join(out, "ids.npy"), ids.numpy())
    np.save(os.path.join(out, "text_out.npy"), hid.numpy())
print("written to", out)
