#!/usr/bin/env python3
"""Golden fixture for rass-train sinsr: SinSR's one-step distillation of a
ResShift teacher (wyf0912/SinSR, models/gaussian_diffusion.py,
training_losses_distill) and SAMSR's variant with SAM-weighted noise
(Liu-Zihang/SAMSR, the same function there), run by the reference code on
the tiny random ResShift network and VQ autoencoder of
tests/fixtures/nn/samsr_tiny (the teacher). The student is the teacher with
every parameter times 1.03 (the test builds it the same way: no second
weights file). The references are public repositories kept outside this one
(SinSR: S-Lab licence; SAMSR: no licence file): run here, never copied.

    git clone https://github.com/wyf0912/SinSR /tmp/ref_SinSR
    git clone https://github.com/Liu-Zihang/SAMSR /tmp/ref_SAMSR
    SINSR_SRC=/tmp/ref_SinSR SAMSR_SRC=/tmp/ref_SAMSR /tmp/samvenv/bin/python tests/train/make_sinsr_fixture.py

(the venv of tests/nn/make_samsr_fixture.py). Both with the released
switches: learn_xT True, finetune_use_gt 1, the teacher's DDIM loop over all
15 steps (clip off in the latent), t = T-1 for the student. SAMSR's masks
are given (two samples, three masks each plus the background) and its
noise is given after its standardisation (generate_masks_from_batch,
generate_weighted_noise and normalize_noise_to_unit_variance are replaced
in its module by functions returning them).

Writes tests/fixtures/train/sinsr_ref.safetensors:
  gt [2, 3, 64, 64], lq [2, 3, 16, 16]     in [-1, 1]
  noise [2, 3, 16, 16]                     the prior's (both methods)
  gauss.{mse, mse_xT, mse_gt}              per-sample terms (SinSR)
  gauss.z_teacher                          the teacher's x_0
  gauss.grad_norms, gauss.grad.<name>     d mean(loss) / d student tensors: the L2 norm of
                                           each (in grad_names' order: the names joined by
                                           newlines, as character codes), whole for every 8th
  sam.masks [2, 4, 16, 16], sam.{mse, mse_xT, mse_gt}, sam.z_teacher, sam.z_t, sam.grad_norms, sam.grad.<name>
"""
import os
import sys

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "tests", "nn"))
import make_samsr_fixture as msf  # noqa: E402
import st_write  # noqa: E402
from make_sam_fixture import read_safetensors  # noqa: E402

OUT = os.path.join(ROOT, "tests", "fixtures", "train", "sinsr_ref.safetensors")
TINY = os.path.join(ROOT, "tests", "fixtures", "nn", "samsr_tiny")
STUDENT_FACTOR = 1.03


def images():
    r = np.random.default_rng(21)
    y, x = np.mgrid[0:64, 0:64]
    gts = []
    for k in range(2):
        a = np.stack([x * 3 + 40 * k, y * 3, (x + y) * 1.5], -1).astype(np.float64)
        a[(x - 20 - 10 * k) ** 2 + (y - 30) ** 2 < 150] = [200, 60 + 80 * k, 50]
        a += r.normal(0, 6, a.shape)
        gts.append(np.clip(a, 0, 255).astype(np.uint8))
    gt = torch.from_numpy(np.stack(gts)).permute(0, 3, 1, 2).float().div(255) * 2 - 1
    # An LQ image: the 4x4 box average plus noise (what a degradation makes does not matter to the loss).
    lq = torch.nn.functional.avg_pool2d(gt, 4) + 0.05 * torch.from_numpy(r.normal(size=(2, 3, 16, 16))).float()
    return gt, lq.clamp(-1, 1)


def losses(gd_mod, diff, student, teacher, ae, gt, lq, noise, sam=None):
    """The reference's training_losses_distill; returns the terms and d mean(loss)."""
    student.zero_grad()
    T = diff.num_timesteps
    t = torch.full((gt.shape[0],), T - 1, dtype=torch.long)
    kw = dict(first_stage_model=ae, model_kwargs={"lq": lq}, learn_xT=True, finetune_use_gt=1.0)
    if sam is None:
        terms, z_t, _ = diff.training_losses_distill(student, teacher, gt, lq, t, noise=noise, **kw)
    else:
        terms, z_t, _ = diff.training_losses_distill(None, student, teacher, gt, lq, t, noise=None, **kw)
    terms["loss"].mean().backward()
    grads = {n: p.grad.detach().clone() for n, p in student.named_parameters()}
    return terms, z_t, grads


def keep_grads(io, prefix, grads):
    """Every tensor's gradient norm, and whole gradients of every 8th tensor and the last (the file stays small)."""
    names = list(grads)
    io[prefix + ".grad_norms"] = torch.stack([grads[n].double().norm() for n in names])
    for i, n in enumerate(names):
        if i % 8 == 0 or i == len(names) - 1:
            io[prefix + ".grad." + n] = grads[n]
    if prefix == "gauss":
        io["grad_names"] = torch.tensor([ord(c) for c in "\n".join(names)], dtype=torch.float32)


def main():
    msf.stand_ins()
    unet_mod, ae_mod, su = msf.import_from(os.environ["SINSR_SRC"],
                                           ["models.unet", "ldm.models.autoencoder", "models.script_util"])
    teacher = unet_mod.UNetModelSwin(**msf.UNET)
    # The converted file has no buffers (the Swin blocks' index and mask, rebuilt by the constructor).
    r = teacher.load_state_dict(read_safetensors(os.path.join(TINY, "unet.safetensors")), strict=False)
    assert not r.unexpected_keys and all("relative_position_index" in k or "attn_mask" in k for k in r.missing_keys)
    teacher.eval()
    student = unet_mod.UNetModelSwin(**msf.UNET)
    student.load_state_dict(teacher.state_dict())
    with torch.no_grad():
        for p in student.parameters():
            p.mul_(STUDENT_FACTOR)
    student.train()
    ae = ae_mod.VQModelTorch(msf.AE, n_embed=64, embed_dim=3)
    ae.load_state_dict(read_safetensors(os.path.join(TINY, "autoencoder.safetensors")))
    ae.eval()
    for p in list(teacher.parameters()) + list(ae.parameters()):
        p.requires_grad_(False)
    gt, lq = images()
    torch.manual_seed(5)
    noise = torch.randn(2, 3, 16, 16)
    io = {"gt": gt, "lq": lq, "noise": noise}

    diff = su.create_gaussian_diffusion(**msf.DIFF)
    terms, _, grads = losses(None, diff, student, teacher, ae, gt, lq, noise)
    for k in ("mse", "mse_xT", "mse_gt"):
        io["gauss." + k] = terms[k].detach()
    with torch.no_grad():
        io["gauss.z_teacher"] = diff.ddim_sample_loop(lq, teacher, noise, ae, clip_denoised=False, apply_decoder=False,
                                                      model_kwargs={"lq": lq})["sample"]
    keep_grads(io, "gauss", grads)
    print("gauss:", {k: terms[k].tolist() for k in ("mse", "mse_xT", "mse_gt")})

    # SAMSR: the same network classes (its repository's), its diffusion with given masks and noise.
    unet2, ae2, su2, gd2 = msf.import_from(os.environ["SAMSR_SRC"], ["models.unet", "ldm.models.autoencoder",
                                                                     "models.script_util", "models.gaussian_diffusion"])
    s_teacher, s_student = unet2.UNetModelSwin(**msf.UNET), unet2.UNetModelSwin(**msf.UNET)
    s_teacher.load_state_dict(teacher.state_dict())
    s_student.load_state_dict(student.state_dict())
    s_teacher.eval()
    s_student.train()
    s_ae = ae2.VQModelTorch(msf.AE, n_embed=64, embed_dim=3)
    s_ae.load_state_dict(ae.state_dict())
    s_ae.eval()
    for p in list(s_teacher.parameters()) + list(s_ae.parameters()):
        p.requires_grad_(False)
    yy, xx = torch.meshgrid(torch.arange(16), torch.arange(16), indexing="ij")
    per = []
    for k in range(2):
        m = torch.stack([((yy - 5 - k) ** 2 + (xx - 6) ** 2 < 20).float(),
                         ((yy - 8) ** 2 + (xx - 9 - 2 * k) ** 2 < 16).float(), (xx >= 12 - k).float()])
        per.append(torch.cat([m, torch.prod(1 - m, 0, keepdim=True)]))
    masks = torch.stack(per)
    gd2.generate_masks_from_batch = lambda *a, **k: masks
    gd2.generate_weighted_noise = lambda m: noise
    gd2.normalize_noise_to_unit_variance = lambda n: n
    sdiff = su2.create_gaussian_diffusion(**msf.DIFF)
    terms, z_t, grads = losses(gd2, sdiff, s_student, s_teacher, s_ae, gt, lq, None, sam=True)
    io["sam.masks"] = masks
    io["sam.z_t"] = z_t.detach()
    for k in ("mse", "mse_xT", "mse_gt"):
        io["sam." + k] = terms[k].detach()
    with torch.no_grad():
        io["sam.z_teacher"] = sdiff.ddim_sample_loop(lq, s_teacher, noise, s_ae, clip_denoised=False,
                                                     apply_decoder=False, model_kwargs={"lq": lq})["sample"]
    keep_grads(io, "sam", grads)
    print("sam:", {k: terms[k].tolist() for k in ("mse", "mse_xT", "mse_gt")})
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    st_write.save(OUT, {k: v.float().numpy() for k, v in io.items()})
    print("wrote", OUT, os.path.getsize(OUT), "bytes")


if __name__ == "__main__":
    main()
