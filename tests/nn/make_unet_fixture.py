#!/usr/bin/env python3
"""Golden fixtures for the UNet2DConditionModel port: tiny SD-2.x-family UNets
built by the reference (diffusers v0.25.1, see reference_env.py) with a fixed
seed, saved in the diffusers folder layout with inputs and outputs.

    DIFFUSERS_SRC=/path/to/diffusers-0.25.1/src /usr/bin/python3 tests/nn/make_unet_fixture.py tests/fixtures/nn

unet_tiny: linear projection (as SD 2.1), 2 levels, a 9x10 latent (odd size:
the upsampler follows the skip size). unet_tiny_conv: conv projection, 3
levels, two transformer layers in the middle level, batch 2.
"""
import json
import os
import sys

import reference_env

reference_env.setup()
import torch  # noqa: E402
from diffusers.models import UNet2DConditionModel  # noqa: E402

import st_write  # noqa: E402

out = sys.argv[1]
CASES = {
    "unet_tiny": (dict(sample_size=16, in_channels=4, out_channels=4,
                       down_block_types=["CrossAttnDownBlock2D", "DownBlock2D"],
                       up_block_types=["UpBlock2D", "CrossAttnUpBlock2D"],
                       block_out_channels=[16, 32], layers_per_block=1, norm_num_groups=8,
                       cross_attention_dim=12, attention_head_dim=[2, 4], use_linear_projection=True),
                  (1, 4, 9, 10), 5, 999),
    "unet_tiny_conv": (dict(sample_size=16, in_channels=4, out_channels=4,
                            down_block_types=["CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"],
                            up_block_types=["UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"],
                            block_out_channels=[8, 16, 16], layers_per_block=2, norm_num_groups=4,
                            cross_attention_dim=8, attention_head_dim=[1, 2, 2], use_linear_projection=False,
                            transformer_layers_per_block=[1, 2, 1]),
                       (2, 4, 8, 8), 3, 1),
}
for name, (config, shape, ctx_len, t) in CASES.items():
    torch.manual_seed(1)
    unet = UNet2DConditionModel(**config).eval()
    with torch.no_grad():
        for pname, p in unet.named_parameters():
            if "norm" in pname:
                p.copy_(torch.randn_like(p) * 0.2 + (1.0 if pname.endswith("weight") else 0.0))
            elif pname.endswith("conv_out.weight") or "proj_out" in pname:
                p.copy_(torch.randn_like(p) * 0.1)  # zero-initialised by diffusers; make them count
    d = os.path.join(out, name)
    os.makedirs(d, exist_ok=True)
    json.dump(dict(config, _class_name="UNet2DConditionModel", _diffusers_version="0.25.1"),
              open(os.path.join(d, "config.json"), "w"), indent=1)
    st_write.save(os.path.join(d, "diffusion_pytorch_model.safetensors"),
                  {k: v.numpy() for k, v in unet.state_dict().items()}, {"format": "pt"})
    x = torch.randn(*shape)
    ctx = torch.randn(shape[0], ctx_len, config["cross_attention_dim"])
    ts = torch.tensor([t] * shape[0])
    with torch.no_grad():
        y = unet(x, ts, encoder_hidden_states=ctx).sample
    st_write.save(os.path.join(out, name + "_io.safetensors"),
                  {"sample": x.numpy(), "timesteps": ts.numpy(), "context": ctx.numpy(), "out": y.numpy()},
                  {"diffusers": "0.25.1", "torch": torch.__version__})
    print(name, "params", sum(p.numel() for p in unet.parameters()))
