#!/usr/bin/env python3
"""Golden fixture of rass-model sample: diffusers 0.25.1's own DDIM sampling on
the tiny SD 2.x folder tests/fixtures/nn/sd_tiny (made by make_restore_fixture.py),
with given initial latents (and eta noise), so tests/nn/test_sample.cpp can
compare the latents after every step and the final 8-bit image.

    /tmp/loravenv/bin/python tests/nn/make_sample_fixture.py tests/fixtures/nn

Cases (settings in the metadata "cases", a JSON list):
  cfg   StableDiffusionPipeline itself (DDIMScheduler.from_config of the
        folder's SD 2.1-base scheduler config: leading spacing, steps_offset 1,
        set_alpha_to_one false), prompt + negative prompt "", guidance 7.5,
        10 steps, 64 wide x 48 high, latents= given; latents recorded by
        callback_on_step_end; output_type "pil" (numpy_to_pil's rounding).
  eta   the pipeline's loop written out (as StableDiffusionPipeline.__call__:
        cat([latents] * 2), chunk, u + g (c - u), scheduler.step) with eta 0.5,
        a negative prompt, guidance 3, 6 steps, variance_noise given per step.
  v     a DDIMScheduler config changed to prediction_type v_prediction,
        timestep_spacing trailing, clip_sample true (range 1),
        set_alpha_to_one true; guidance 1 (no classifier-free guidance), 7 steps.
Tensors per case <c>: <c>.init [1,4,h,w], <c>.noise [steps,1,4,h,w] (eta),
<c>.latents [steps,1,4,h,w] (after each step), <c>.out (the 8-bit HxWx3 image, as int32).
Also the timestep lists of set_timesteps for SD 2.1-base's config at 20 and
50 steps ("timesteps" in the metadata), printed for the test to hold.
"""
import json
import os
import sys

import numpy as np
import torch
from diffusers import (AutoencoderKL, DDIMScheduler, StableDiffusionPipeline, UNet2DConditionModel)
from transformers import CLIPTextModel, CLIPTokenizer

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import st_write  # noqa: E402

out = sys.argv[1]
sd = os.path.join(out, "sd_tiny")
unet = UNet2DConditionModel.from_pretrained(sd, subfolder="unet").eval()
vae = AutoencoderKL.from_pretrained(sd, subfolder="vae").eval()
tok = CLIPTokenizer.from_pretrained(sd, subfolder="tokenizer")
clip = CLIPTextModel.from_pretrained(sd, subfolder="text_encoder").eval()
sched_cfg = DDIMScheduler.load_config(sd, subfolder="scheduler")


def scheduler(**over):
    cfg = dict(sched_cfg)
    cfg.update(over)
    return DDIMScheduler.from_config(cfg)


def pipe_with(s):
    return StableDiffusionPipeline(vae=vae, text_encoder=clip, tokenizer=tok, unet=unet, scheduler=s,
                                   safety_checker=None, feature_extractor=None, requires_safety_checker=False)


tensors, cases = {}, []
W, H = 64, 48
g = torch.Generator().manual_seed(13)


def to_u8(pipe, latents):
    image = vae.decode(latents / vae.config.scaling_factor, return_dict=False)[0]
    pil = pipe.image_processor.postprocess(image, output_type="pil", do_denormalize=[True])[0]
    return np.asarray(pil)


with torch.no_grad():
    # cfg: the pipeline itself.
    init = torch.randn(1, 4, H // 8, W // 8, generator=g)
    rec = []

    def cb(p, i, t, kw):
        rec.append(kw["latents"].clone())
        return kw

    pipe = pipe_with(scheduler())
    img = pipe(prompt="a red car on a road", height=H, width=W, num_inference_steps=10, guidance_scale=7.5,
               latents=init.clone(), output_type="pil", callback_on_step_end=cb).images[0]
    tensors["cfg.init"] = init.numpy()
    tensors["cfg.latents"] = torch.stack(rec).numpy()
    tensors["cfg.out"] = np.asarray(img).astype(np.int32)
    cases.append({"name": "cfg", "prompt": "a red car on a road", "negative_prompt": "", "steps": 10, "guidance": 7.5,
                  "eta": 0.0, "width": W, "height": H})

    # eta and v: the pipeline's loop with given noise.
    def manual(name, s, prompt, negative, steps, guidance, eta):
        # A pipeline of its own scheduler: StableDiffusionPipeline.__init__ rewrites a
        # clip_sample true config to false, and `s` is the scheduler under test.
        pipe = pipe_with(scheduler())
        cfg = guidance > 1
        pe, ne = pipe.encode_prompt(prompt, "cpu", 1, cfg, negative)
        ctx = torch.cat([ne, pe]) if cfg else pe
        s.set_timesteps(steps)
        lat = torch.randn(1, 4, H // 8, W // 8, generator=g)
        tensors[name + ".init"] = lat.numpy().copy()
        lat = lat * s.init_noise_sigma
        noises, rec = [], []
        for t in s.timesteps:
            inp = torch.cat([lat] * 2) if cfg else lat
            inp = s.scale_model_input(inp, t)
            e = unet(inp, t, encoder_hidden_states=ctx, return_dict=False)[0]
            if cfg:
                u, c = e.chunk(2)
                e = u + guidance * (c - u)
            nz = torch.randn(lat.shape, generator=g)
            noises.append(nz)
            lat = s.step(e, t, lat, eta=eta, variance_noise=nz, return_dict=False)[0]
            rec.append(lat.clone())
        tensors[name + ".noise"] = torch.stack(noises).numpy()
        tensors[name + ".latents"] = torch.stack(rec).numpy()
        tensors[name + ".out"] = to_u8(pipe, lat).astype(np.int32)
        cases.append({"name": name, "prompt": prompt, "negative_prompt": negative or "", "steps": steps,
                      "guidance": guidance, "eta": eta, "width": W, "height": H,
                      "scheduler": {k: v for k, v in s.config.items() if not k.startswith("_")}})

    manual("eta", scheduler(), "a tree and the sky", "a wall", 6, 3.0, 0.5)
    manual("v", scheduler(prediction_type="v_prediction", timestep_spacing="trailing", clip_sample=True,
                          clip_sample_range=1.0, set_alpha_to_one=True),
           "grass", None, 7, 1.0, 0.0)

timesteps = {}
for n in (20, 50):
    s = scheduler()
    s.set_timesteps(n)
    timesteps[str(n)] = s.timesteps.tolist()
    print(n, timesteps[str(n)])
meta = {"cases": json.dumps(cases), "timesteps": json.dumps(timesteps),
        "reference": "diffusers %s, torch %s" % (__import__("diffusers").__version__, torch.__version__)}
st_write.save(os.path.join(out, "sample_ref.safetensors"), tensors, meta)
print("cases:", [c["name"] for c in cases])
