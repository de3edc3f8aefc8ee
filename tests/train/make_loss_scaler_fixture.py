#!/usr/bin/env python3
"""Golden fixture for rass-train's fp16 loss scaling (loop.amp_dtype fp16,
lib/rass/train/loss_scaler.cpp and the loop's use of it): PyTorch's own
torch.amp.GradScaler driving the training step as ResShift's trainer and
accelerate use it, with gradient clipping after unscale_ (detectron2's and
accelerate's order):

    scaler.scale(loss).backward(); scaler.unscale_(opt);
    clip_grad_norm_(params, 0.5); scaler.step(opt); scaler.update()

on a linear model y = W x + b (W 2x3, b 2) with an MSE loss over a batch of
4 per step, AdamW (lr 0.05, weight decay 0.01), GradScaler(init_scale=256,
growth_interval=3). Non-finite steps, which GradScaler skips:
  step 2, 7: the gradient of W times inf (a tensor hook; the loss is finite)
  step 5:    the loss times NaN (a non-finite loss, NaN gradients)
  step 8:    the gradient of b times inf (a second skip in a row)

    /tmp/pyt/py tests/train/make_loss_scaler_fixture.py

(any Python with torch >= 2.3, whose GradScaler runs on the CPU; this
session's was torch 2.11's CPU wheel.) Writes
tests/fixtures/train/loss_scaler_ref.safetensors:
  w0, b0            the start weights
  x, y              [steps, 4, 3] and [steps, 4, 2]: every step's batch
  loss              [steps] float64, each step's (unscaled) loss
  grad_norm         [steps] float64, the unscaled gradients' norm before clipping
  scale_used        [steps] the scale of each step's backward
  scale_after       [steps] the scale after each step's update
  growth_tracker    [steps] GradScaler's count after each update
  skipped           [steps] 1 where the step was skipped
  w, b              [steps, ...] the weights after each step
metadata: the settings above (JSON).
"""
import json
import math
import os
import sys

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "nn"))
import st_write  # noqa: E402

OUT = os.path.join(HERE, "..", "fixtures", "train", "loss_scaler_ref.safetensors")
STEPS = 12
SETTINGS = {"steps": STEPS, "batch": 4, "lr": 0.05, "weight_decay": 0.01, "clip_grad_norm": 0.5,
            "init_scale": 256.0, "growth_interval": 3,
            "inf_grad_w": [2, 7], "nan_loss": [5], "inf_grad_b": [8]}


def main():
    torch.manual_seed(0)
    rng = np.random.default_rng(7)
    w0 = rng.standard_normal((2, 3)).astype(np.float32)
    b0 = rng.standard_normal(2).astype(np.float32)
    x = rng.standard_normal((STEPS, 4, 3)).astype(np.float32)
    y = rng.standard_normal((STEPS, 4, 2)).astype(np.float32)

    w = torch.nn.Parameter(torch.from_numpy(w0.copy()))
    b = torch.nn.Parameter(torch.from_numpy(b0.copy()))
    opt = torch.optim.AdamW([w, b], lr=SETTINGS["lr"], weight_decay=SETTINGS["weight_decay"])
    scaler = torch.amp.GradScaler("cpu", init_scale=SETTINGS["init_scale"], growth_interval=SETTINGS["growth_interval"])
    out = {k: [] for k in ("loss", "grad_norm", "scale_used", "scale_after", "growth_tracker", "skipped", "w", "b")}
    for step in range(STEPS):
        opt.zero_grad(set_to_none=True)
        hooks = []
        if step in SETTINGS["inf_grad_w"]:
            hooks.append(w.register_hook(lambda g: g * math.inf))
        if step in SETTINGS["inf_grad_b"]:
            hooks.append(b.register_hook(lambda g: g * math.inf))
        pred = torch.from_numpy(x[step]) @ w.t() + b
        loss = torch.nn.functional.mse_loss(pred, torch.from_numpy(y[step]))
        if step in SETTINGS["nan_loss"]:
            loss = loss * math.nan
        used = scaler.get_scale()
        scaler.scale(loss).backward()
        for h in hooks:
            h.remove()
        scaler.unscale_(opt)
        norm = torch.nn.utils.clip_grad_norm_([w, b], SETTINGS["clip_grad_norm"])
        scaler.step(opt)
        scaler.update()
        out["loss"].append(loss.item())
        out["grad_norm"].append(norm.item())
        out["scale_used"].append(used)
        out["scale_after"].append(scaler.get_scale())
        out["growth_tracker"].append(int(scaler._get_growth_tracker()))
        out["skipped"].append(1 if scaler.get_scale() < used else 0)
        out["w"].append(w.detach().numpy().copy())
        out["b"].append(b.detach().numpy().copy())
    tensors = {"w0": w0, "b0": b0, "x": x, "y": y,
               "loss": np.array(out["loss"], dtype=np.float64),
               "grad_norm": np.array(out["grad_norm"], dtype=np.float64),
               "scale_used": np.array(out["scale_used"], dtype=np.float32),
               "scale_after": np.array(out["scale_after"], dtype=np.float32),
               "growth_tracker": np.array(out["growth_tracker"], dtype=np.int64),
               "skipped": np.array(out["skipped"], dtype=np.int64),
               "w": np.stack(out["w"]), "b": np.stack(out["b"])}
    st_write.save(OUT, tensors, {"settings": json.dumps(SETTINGS), "torch": torch.__version__})
    print("wrote", OUT)
    print("scale_used", out["scale_used"])
    print("skipped", out["skipped"], "growth", out["growth_tracker"])


if __name__ == "__main__":
    main()
