#!/usr/bin/env python3
"""An OSEDiff-structured checkpoint on the tiny fixtures, its reference
outputs, and its conversion by scripts/convert_osediff.py
(tests/nn/test_convert_osediff.cpp loads the converted files with lib/rass/model/lora_io
and reproduces the outputs).

Runs the released packages in the reference environment of make_lora_fixture.py
(torch 2.1.2, diffusers 0.25.1, peft 0.7.1):

    /tmp/loravenv/bin/python tests/nn/make_osediff_pkl_fixture.py tests/fixtures/nn/osediff_pkl

What it does, following cswry/OSEDiff osediff.py (initialize_unet,
initialize_vae, OSEDiff_gen.save_model, OSEDiff_test.load_ckpt):

  * the tiny UNet (tests/fixtures/nn/unet_tiny) gets three adapters made by
    LoraConfig(r=4, init_lora_weights="gaussian", target_modules=...) with no
    lora_alpha (PEFT's default 8: scale 2.0): default_encoder (down_blocks and
    conv_in), default_decoder (up_blocks, conv_out), default_others (the
    rest), the targets chosen by OSEDiff's name patterns; the tiny VAE
    (tests/fixtures/nn/vae_tiny) gets default_encoder on its encoder and
    quant_conv;
  * nothing is trained: every lora_B (zero at init) is filled with N(0, 0.2)
    values, and conv_in's base weights are perturbed (OSEDiff trains conv_in
    fully), so every part of the checkpoint changes the output;
  * osediff_tiny.pkl: the dict save_model writes (rank_unet, rank_vae, the
    four module lists, state_dict_unet with the keys containing "lora" or
    "conv_in", state_dict_vae with the "lora" keys);
  * ref_io.safetensors: unet_out, the UNet output on unet_tiny_io's sample,
    timesteps and context with the three adapters active together
    (set_adapter on all three, as load_ckpt does); vae_mean, the VAE encoder
    mean on vae_tiny_io's x with its adapter;
  * osediff_tiny.unet.safetensors, osediff_tiny.vae.safetensors: the output
    of scripts/convert_osediff.py on the .pkl.
"""
import os
import subprocess
import sys

import diffusers
import peft
import torch
from diffusers import AutoencoderKL, UNet2DConditionModel
from peft import LoraConfig
from safetensors.torch import load_file, save_file

out = sys.argv[1]
here = os.path.dirname(os.path.abspath(__file__))
root = os.path.join(here, "..", "..")
fixtures = os.path.join(here, "..", "fixtures", "nn")
os.makedirs(out, exist_ok=True)
RANK = 4


def unet_targets(unet):
    # osediff.py initialize_unet, verbatim in behaviour.
    enc, dec, others = [], [], []
    l_grep = ["to_k", "to_q", "to_v", "to_out.0", "conv", "conv1", "conv2", "conv_in", "conv_shortcut", "conv_out",
              "proj_out", "proj_in", "ff.net.2", "ff.net.0.proj"]
    for n, _ in unet.named_parameters():
        if "bias" in n or "norm" in n:
            continue
        for pattern in l_grep:
            if pattern in n and ("down_blocks" in n or "conv_in" in n):
                enc.append(n.replace(".weight", ""))
                break
            elif pattern in n and ("up_blocks" in n or "conv_out" in n):
                dec.append(n.replace(".weight", ""))
                break
            elif pattern in n:
                others.append(n.replace(".weight", ""))
                break
    return enc, dec, others


def vae_targets(vae):
    # osediff.py initialize_vae (its duplicates included: PEFT ignores them).
    targets = []
    l_grep = ["conv1", "conv2", "conv_in", "conv_shortcut", "conv", "conv_out", "to_k", "to_q", "to_v", "to_out.0"]
    for n, _ in vae.named_parameters():
        if "bias" in n or "norm" in n:
            continue
        for pattern in l_grep:
            if pattern in n and ("encoder" in n):
                targets.append(n.replace(".weight", ""))
            elif ("quant_conv" in n) and ("post_quant_conv" not in n):
                targets.append(n.replace(".weight", ""))
    return targets


torch.manual_seed(2024)
unet = UNet2DConditionModel.from_pretrained(os.path.join(fixtures, "unet_tiny")).eval()
enc, dec, others = unet_targets(unet)
for name, targets in (("default_encoder", enc), ("default_decoder", dec), ("default_others", others)):
    unet.add_adapter(LoraConfig(r=RANK, init_lora_weights="gaussian", target_modules=targets), adapter_name=name)

vae = AutoencoderKL.from_pretrained(os.path.join(fixtures, "vae_tiny")).eval()
vae_mods = vae_targets(vae)
vae.add_adapter(LoraConfig(r=RANK, init_lora_weights="gaussian", target_modules=vae_mods), adapter_name="default_encoder")

with torch.no_grad():
    for model in (unet, vae):
        for n, p in model.named_parameters():
            if "lora_B" in n:
                p.normal_(0, 0.2)
    unet.conv_in.base_layer.weight.add_(torch.randn_like(unet.conv_in.base_layer.weight) * 0.1)
    unet.conv_in.base_layer.bias.add_(torch.randn_like(unet.conv_in.base_layer.bias) * 0.1)

sd = {
    "vae_lora_encoder_modules": vae_mods,
    "unet_lora_encoder_modules": enc,
    "unet_lora_decoder_modules": dec,
    "unet_lora_others_modules": others,
    "rank_unet": RANK,
    "rank_vae": RANK,
    "state_dict_unet": {k: v for k, v in unet.state_dict().items() if "lora" in k or "conv_in" in k},
    "state_dict_vae": {k: v for k, v in vae.state_dict().items() if "lora" in k},
}
pkl = os.path.join(out, "osediff_tiny.pkl")
torch.save(sd, pkl)

# Reference outputs, adapters active as OSEDiff_test.load_ckpt leaves them.
unet.set_adapter(["default_encoder", "default_decoder", "default_others"])
vae.set_adapter(["default_encoder"])
uio = load_file(os.path.join(fixtures, "unet_tiny_io.safetensors"))
vio = load_file(os.path.join(fixtures, "vae_tiny_io.safetensors"))
with torch.no_grad():
    unet_out = unet(uio["sample"], uio["timesteps"], encoder_hidden_states=uio["context"]).sample
    vae_mean = vae.encode(vio["x"]).latent_dist.mean
    # The adapters must matter: outputs without them differ.
    unet.disable_adapters()
    base = unet(uio["sample"], uio["timesteps"], encoder_hidden_states=uio["context"]).sample
    assert (unet_out - base).abs().max() > 1e-2
save_file({"unet_out": unet_out.contiguous(), "vae_mean": vae_mean.contiguous()}, os.path.join(out, "ref_io.safetensors"),
          metadata={"torch": torch.__version__, "diffusers": diffusers.__version__, "peft": peft.__version__})

subprocess.run([sys.executable, os.path.join(root, "scripts", "convert_osediff.py"), pkl, "--output-dir", out, "--force"],
               check=True)
conv = load_file(os.path.join(out, "osediff_tiny.unet.safetensors"))
print(f"unet targets: encoder {len(enc)}, decoder {len(dec)}, others {len(others)}; vae {len(set(vae_mods))}; "
      f"converted {len(conv)} tensors; |unet_out - base| max {(unet_out - base).abs().max():.3g}")
