#!/usr/bin/env python3
"""Golden fixture for rass-train resshift: ResShift's own training loss
(zsyOAOA/ResShift, models/gaussian_diffusion.py training_losses, and its
TrainerDifIRLPIPS's LPIPS term on the decoded prediction) run by the
reference code on the tiny random ResShift network and VQ autoencoder of
tests/fixtures/nn/samsr_tiny, with given steps and noise. LPIPS-VGG is the
official `lpips` package (0.1.4) with the narrow-VGG weights of
tests/fixtures/iqa/lpips_vgg.safetensors (tests/nn/make_iqa_lpips_fixture.py).
The reference is a public repository kept outside this one (S-Lab licence):
run here, never copied.

    git clone https://github.com/zsyOAOA/ResShift /tmp/ref_ResShift
    git clone https://github.com/wyf0912/SinSR /tmp/ref_SinSR
    /tmp/samvenv/bin/pip install lpips==0.1.4 scipy
    SINSR_SRC=/tmp/ref_SinSR RESSHIFT_SRC=/tmp/ref_ResShift /tmp/samvenv/bin/python tests/train/make_resshift_fixture.py

Writes tests/fixtures/train/resshift_ref.safetensors:
  gt [2, 3, 64, 64], lq [2, 3, 16, 16] in [-1, 1]; t [2] (3 and 11); noise [2, 3, 16, 16]
  z_t, mse [2]                 q_sample and the per-sample x_0 loss
  lpips [2]                    LPIPS(decode(prediction).clamp(-1, 1), gt) per sample
  grad_norms, grad.<name>      d mean(mse + lpips) / d network tensors: every norm
                               (names in make_sinsr_fixture.py's grad_names order), whole
                               gradients of every 8th tensor and the last
"""
import os
import sys

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "tests", "nn"))
sys.path.insert(0, HERE)
import make_samsr_fixture as msf  # noqa: E402
import make_sinsr_fixture as sinsr  # noqa: E402
import st_write  # noqa: E402
from make_sam_fixture import read_safetensors  # noqa: E402

OUT = os.path.join(ROOT, "tests", "fixtures", "train", "resshift_ref.safetensors")


def main():
    msf.stand_ins()
    import lpips  # noqa: E402  (after the stand-ins: it imports nothing of theirs)
    import make_iqa_lpips_fixture  # noqa: E402
    # The network and autoencoder classes of SinSR's repository (those of the released v1 models; ResShift's
    # current UNetModelSwin has other input channels), ResShift's own diffusion code for the loss.
    unet_mod, ae_mod = msf.import_from(os.environ["SINSR_SRC"], ["models.unet", "ldm.models.autoencoder"])
    (su,) = msf.import_from(os.environ["RESSHIFT_SRC"], ["models.script_util"])
    net = unet_mod.UNetModelSwin(**msf.UNET)
    r = net.load_state_dict(read_safetensors(os.path.join(sinsr.TINY, "unet.safetensors")), strict=False)
    assert not r.unexpected_keys and all("relative_position_index" in k or "attn_mask" in k for k in r.missing_keys)
    net.train()
    ae = ae_mod.VQModelTorch(msf.AE, n_embed=64, embed_dim=3)
    ae.load_state_dict(read_safetensors(os.path.join(sinsr.TINY, "autoencoder.safetensors")))
    ae.eval()
    ae.requires_grad_(False)
    net_lpips = make_iqa_lpips_fixture.narrow(lpips.LPIPS(net="vgg", pretrained=False, pnet_rand=True, verbose=False),
                                              "vgg", torch.Generator().manual_seed(0))
    missing = net_lpips.load_state_dict(read_safetensors(os.path.join(ROOT, "tests", "fixtures", "iqa",
                                                                      "lpips_vgg.safetensors")), strict=False).missing_keys
    assert all(k.startswith("lins.") for k in missing), missing
    net_lpips.requires_grad_(False)
    gt, lq = sinsr.images()
    t = torch.tensor([3, 11])
    torch.manual_seed(8)
    noise = torch.randn(2, 3, 16, 16)
    diff = su.create_gaussian_diffusion(**msf.DIFF)
    terms, z_t, z0_pred = diff.training_losses(net, gt, lq, t, first_stage_model=ae, model_kwargs={"lq": lq},
                                               noise=noise)
    # TrainerDifIRLPIPS.backward_step: the decoded prediction (through the codebook's straight-through), clamped.
    x0 = diff.decode_first_stage(z0_pred, ae)
    lp = net_lpips(x0.clamp(-1.0, 1.0), gt).view(-1)
    (terms["mse"] + lp).mean().backward()
    grads = {n: p.grad.detach().clone() for n, p in net.named_parameters()}
    io = {"gt": gt, "lq": lq, "t": t.float(), "noise": noise, "z_t": z_t.detach(), "mse": terms["mse"].detach(),
          "lpips": lp.detach()}
    names = list(grads)
    io["grad_norms"] = torch.stack([grads[n].double().norm() for n in names])
    for i, n in enumerate(names):
        if i % 8 == 0 or i == len(names) - 1:
            io["grad." + n] = grads[n]
    print("mse", terms["mse"].tolist(), "lpips", lp.tolist())
    st_write.save(OUT, {k: v.float().numpy() for k, v in io.items()})
    print("wrote", OUT, os.path.getsize(OUT), "bytes")


if __name__ == "__main__":
    main()
