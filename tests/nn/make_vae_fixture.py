#!/usr/bin/env python3
"""Golden fixture for the AutoencoderKL port: a tiny VAE built by the reference
(diffusers v0.25.1 source, see reference_env.py) with a fixed seed; its config
and weights in the diffusers folder layout, and inputs/outputs.

    DIFFUSERS_SRC=/path/to/diffusers-0.25.1/src /usr/bin/python3 tests/nn/make_vae_fixture.py tests/fixtures/nn
"""
import json
import os
import sys

import reference_env

reference_env.setup()
import numpy as np  # noqa: E402
import torch  # noqa: E402
from diffusers.models import AutoencoderKL  # noqa: E402

import st_write  # noqa: E402

out = sys.argv[1]
torch.manual_seed(0)
config = dict(in_channels=3, out_channels=3, latent_channels=4,
              down_block_types=["DownEncoderBlock2D"] * 3, up_block_types=["UpDecoderBlock2D"] * 3,
              block_out_channels=[8, 16, 16], layers_per_block=2, norm_num_groups=4, sample_size=32,
              act_fn="silu", scaling_factor=0.18215)
vae = AutoencoderKL(**config).eval()
# Random weights are small at init; scale the norms' affine params off their 1/0 defaults too.
with torch.no_grad():
    for name, p in vae.named_parameters():
        if "norm" in name:
            p.copy_(torch.randn_like(p) * 0.2 + (1.0 if name.endswith("weight") else 0.0))
d = os.path.join(out, "vae_tiny")
os.makedirs(d, exist_ok=True)
cfg = dict(config, _class_name="AutoencoderKL", _diffusers_version="0.25.1")
json.dump(cfg, open(os.path.join(d, "config.json"), "w"), indent=1)
st_write.save(os.path.join(d, "diffusion_pytorch_model.safetensors"),
              {k: v.numpy() for k, v in vae.state_dict().items()}, {"format": "pt"})

x = torch.rand(1, 3, 32, 40) * 2 - 1
z = torch.randn(1, 4, 4, 5)
with torch.no_grad():
    dist = vae.encode(x).latent_dist
    dec = vae.decode(z).sample
st_write.save(os.path.join(out, "vae_tiny_io.safetensors"),
              {"x": x.numpy(), "mean": dist.mean.numpy(), "logvar": dist.logvar.numpy(), "z": z.numpy(),
               "decoded": dec.numpy()},
              {"diffusers": "0.25.1", "torch": torch.__version__})
print("params", sum(p.numel() for p in vae.parameters()))
