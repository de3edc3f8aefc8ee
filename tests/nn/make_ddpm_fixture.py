#!/usr/bin/env python3
"""alphas_cumprod of diffusers' DDPMScheduler (scaled_linear 0.00085..0.012,
1000 steps), the SD 2.x schedule, from the reference source (reference_env.py).

    DIFFUSERS_SRC=/path/to/diffusers-0.25.1/src /usr/bin/python3 tests/nn/make_ddpm_fixture.py > tests/fixtures/nn/ddpm_sd2.json
"""
import json

import reference_env

reference_env.setup()
from diffusers import DDPMScheduler  # noqa: E402

s = DDPMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", num_train_timesteps=1000)
print(json.dumps({"betas": s.betas.tolist(), "alphas_cumprod": s.alphas_cumprod.tolist()}))
