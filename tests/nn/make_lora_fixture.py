#!/usr/bin/env python3
"""LoRA files written by the reference libraries, and the reference UNet
outputs with each applied (tests/nn/test_lora.cpp loads them with
lib/rass/model/lora_io and reproduces the outputs).

Unlike the other fixture scripts this one runs the released packages (peft is
the writer under test), in a virtual environment outside the repository; the
script installs nothing itself. Versions used for the committed fixtures:

    python3 -m venv /tmp/loravenv
    /tmp/loravenv/bin/pip install torch==2.1.2 diffusers==0.25.1 peft==0.7.1 \
        transformers==4.36.2 huggingface_hub==0.20.3 "numpy<2" safetensors==0.7.0 accelerate
    /tmp/loravenv/bin/python tests/nn/make_lora_fixture.py tests/fixtures/nn

Inputs: the tiny UNet (tests/fixtures/nn/unet_tiny, made by
make_unet_fixture.py) and its sample/timesteps/context
(unet_tiny_io.safetensors). Outputs, in the given folder:

  lora_peft/adapter_model.safetensors, adapter_config.json
      peft's PeftModel.save_pretrained of the UNet wrapped by get_peft_model
      (LoraConfig r=4, lora_alpha=6, attention and feed-forward Linear layers
      and the resnets' Conv2d layers): keys
      "base_model.model.<module>.lora_A.weight", alpha only in the config.
  lora_attn_procs.safetensors
      diffusers' legacy attention-processor LoRA (LoRAAttnProcessor, rank 4),
      saved by UNet2DConditionModel.save_attn_procs: keys
      "<attn>.processor.to_q_lora.down.weight" (to_k, to_v, to_out; up/down).
      Made in a second process with peft hidden: diffusers 0.25 with peft
      installed runs its PEFT backend, where these processors have no effect.
  lora_ref_io.safetensors
      peft_out, attn_procs_out: the UNet output on the unet_tiny inputs with
      each LoRA applied (fp32), and the versions in the metadata.
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile

ATTN_PROCS = len(sys.argv) > 2 and sys.argv[2] == "--attn-procs"
if ATTN_PROCS:
    # diffusers 0.25 with peft installed builds Attention with plain nn.Linear
    # (its PEFT backend), on which LoRAAttnProcessor has no effect. Its own
    # LoRA path (LoRACompatibleLinear, what save_attn_procs/load_attn_procs
    # files are for) is what it runs without peft: hide peft in this process.
    sys.modules["peft"] = None

import diffusers  # noqa: E402
import torch  # noqa: E402
from diffusers import UNet2DConditionModel  # noqa: E402
from diffusers.models.attention_processor import LoRAAttnProcessor  # noqa: E402
from safetensors.torch import load_file, save_file  # noqa: E402

out = sys.argv[1]
here = os.path.dirname(os.path.abspath(__file__))
fixtures = os.path.join(here, "..", "fixtures", "nn")
unet_dir = os.path.join(fixtures, "unet_tiny")
io = load_file(os.path.join(fixtures, "unet_tiny_io.safetensors"))
x, ts, ctx = io["sample"], io["timesteps"], io["context"]


def load_unet():
    return UNet2DConditionModel.from_pretrained(unet_dir).eval()


if ATTN_PROCS:
    # (b) diffusers' attention processors with LoRA (LoRAAttnProcessor), saved
    # with save_attn_procs before the first forward (diffusers 0.25 moves the
    # layers into LoRACompatibleLinear on the first call).
    torch.manual_seed(8)
    unet = load_unet()
    blocks = unet.config.block_out_channels
    procs = {}
    for name in unet.attn_processors.keys():
        cross = None if name.endswith("attn1.processor") else unet.config.cross_attention_dim
        if name.startswith("mid_block"):
            hidden = blocks[-1]
        elif name.startswith("up_blocks"):
            hidden = list(reversed(blocks))[int(name[len("up_blocks.")])]
        else:
            hidden = blocks[int(name[len("down_blocks.")])]
        procs[name] = LoRAAttnProcessor(hidden_size=hidden, cross_attention_dim=cross, rank=4)
        with torch.no_grad():
            for p in procs[name].parameters():
                p.normal_(0, 0.2)
    unet.set_attn_processor(procs)
    tmp = tempfile.mkdtemp()
    unet.save_attn_procs(tmp, weight_name="lora_attn_procs.safetensors", safe_serialization=True)
    shutil.copy(os.path.join(tmp, "lora_attn_procs.safetensors"), os.path.join(out, "lora_attn_procs.safetensors"))
    shutil.rmtree(tmp)
    with torch.no_grad():
        attn_out = unet(x, ts, encoder_hidden_states=ctx).sample
    save_file({"attn_procs_out": attn_out.contiguous()}, sys.argv[3])

    sys.exit(0)

import peft  # noqa: E402
from peft import LoraConfig, get_peft_model  # noqa: E402

# (a) peft: a LoRA-wrapped diffusers UNet, saved with save_pretrained.
torch.manual_seed(7)
unet = load_unet()
config = LoraConfig(r=4, lora_alpha=6, init_lora_weights="gaussian",
                    target_modules=["to_q", "to_k", "to_v", "to_out.0", "proj_in", "proj_out",
                                    "ff.net.0.proj", "ff.net.2", "conv1", "conv2"])
model = get_peft_model(unet, config)
with torch.no_grad():
    for name, p in model.named_parameters():
        if "lora_B" in name:  # zero-initialised: give the adapter an effect
            p.normal_(0, 0.1)
    peft_out = model(x, ts, encoder_hidden_states=ctx).sample
d = os.path.join(out, "lora_peft")
shutil.rmtree(d, ignore_errors=True)
model.save_pretrained(d, safe_serialization=True)
for extra in os.listdir(d):
    if extra not in ("adapter_model.safetensors", "adapter_config.json"):
        os.remove(os.path.join(d, extra))  # README.md model card

tmp = tempfile.mkdtemp()
subprocess.run([sys.executable, __file__, out, "--attn-procs", os.path.join(tmp, "attn_out.safetensors")], check=True)
attn_out = load_file(os.path.join(tmp, "attn_out.safetensors"))["attn_procs_out"]
shutil.rmtree(tmp)

save_file({"peft_out": peft_out.contiguous(), "attn_procs_out": attn_out.contiguous()},
          os.path.join(out, "lora_ref_io.safetensors"),
          {"torch": torch.__version__, "diffusers": diffusers.__version__, "peft": peft.__version__})
keys = sorted(load_file(os.path.join(out, "lora_attn_procs.safetensors")).keys())
print("attn procs keys", len(keys), keys[0])
print("peft keys", len(load_file(os.path.join(d, "adapter_model.safetensors"))), json.load(open(os.path.join(d, "adapter_config.json")))["lora_alpha"])
