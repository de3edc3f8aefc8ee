#!/usr/bin/env python3
"""Golden fixtures for MUSIQ (rass-eval-iqa -m musiq, musiq-ava): pyiqa's MUSIQ
module, the implementation behind the numbers papers report, run as a test
oracle on small random-weight models and images of awkward sizes.

    PYIQA_SRC=/tmp/pyiqa-dl/x PYTHONPATH=/tmp/musiq-deps \\
        /tmp/loravenv/bin/python tests/nn/make_iqa_musiq_fixture.py tests/fixtures/nn

Reference: pyiqa 0.1.16 (non-commercial licence: used here only as an
oracle, outside the project; nothing of it is in rass), torch 2.1.2 on the
CPU. pyiqa is not installed with its dependencies (it wants transformers>=5):
    pip download pyiqa==0.1.16 --no-deps -d /tmp/pyiqa-dl
    unzip /tmp/pyiqa-dl/pyiqa-0.1.16-py3-none-any.whl -d /tmp/pyiqa-dl/x
    pip install --target /tmp/musiq-deps --no-deps opencv-python-headless==4.10.0.84 einops addict
and PYIQA_SRC names the unpacked wheel.

The weights go through the converter users run (scripts/convert_iqa_musiq.py)
from .pth files shaped like pyiqa's releases (one a bare state dict, one
under 'params' with 'module.' prefixes), so the C++ test also checks what
the converter writes. The models are small (the released one has hidden 384,
14 layers, 6 heads, MLP 1152; the stem is always the real one) so the files
stay small; every parameter is drawn at random so a wrong or missed one shows.

Writes:
  musiq_tiny.safetensors       one-score head (KonIQ-like): hidden 8, 2 layers, 2 heads, MLP 16
  musiq_tiny_ava.safetensors   10-bin head (AVA-like): hidden 8, 1 layer, 2 heads, MLP 16
  musiq_io.safetensors         img_<i> [H, W, 3] uint8; score_<i> (one-score model),
                               ava_<i> (10-bin model's mean), both F64 from the
                               reference run in float64 (its own float32 run differs
                               from that by up to ~1e-5 on these images: flat patches
                               through the zero-mean standardized root conv and
                               GroupNorm amplify rounding), and score32_<i>, ava32_<i>
                               from its float32 run, for comparison; spatial_<i>, scale_<i>
                               [L] int64 (the token layout, padding dropped);
                               patchsum_<i>, patchdot_<i> [L] (each token's sum and
                               dot with probe [3072], a layout check); batch_scores [2]
                               (img_0 and a second image of its size, one forward)
  ../iqa/musiq_<i>.png         img_0, img_2, img_6 and img_batch (as b) for
                               tests/cli/test_eval_iqa_musiq.sh; their scores are printed
"""
import copy
import importlib.util
import os
import sys
import tempfile

import numpy as np
import torch
from PIL import Image
from safetensors.torch import save_file

src = os.environ.get("PYIQA_SRC")
if not src:
    sys.exit("set PYIQA_SRC to the unpacked pyiqa wheel (see the docstring)")
sys.path.insert(0, src)
import pyiqa.archs.musiq_arch as musiq_arch  # noqa: E402
from pyiqa.data.multiscale_trans_util import get_multiscale_patches  # noqa: E402

here = os.path.dirname(os.path.abspath(__file__))
spec = importlib.util.spec_from_file_location("convert_iqa_musiq",
                                              os.path.join(here, "..", "..", "scripts", "convert_iqa_musiq.py"))
converter = importlib.util.module_from_spec(spec)
spec.loader.exec_module(converter)

out = sys.argv[1]
torch.manual_seed(11)


def randomize(net):
    with torch.no_grad():
        for name, p in net.named_parameters():
            if name.startswith("gn") or ".gn" in name or "norm" in name:  # not the identity, so a missed norm shows
                p.copy_(torch.randn_like(p) * 0.2 + (1.0 if name.endswith("weight") else 0.0))
            elif name in ("transformer_encoder.cls",) or "_emb" in name:
                p.copy_(torch.randn_like(p) * 0.5)
            elif name.endswith("bias"):
                p.copy_(torch.randn_like(p) * 0.1)
            elif "conv" in name:  # weight-standardized: any scale
                p.copy_(torch.randn_like(p))
            else:
                p.copy_(torch.randn_like(p) / np.sqrt(p.shape[-1]))
    return net.eval()


one = randomize(musiq_arch.MUSIQ(pretrained=False, num_class=1, hidden_size=8, mlp_dim=16, num_heads=2,
                                 num_layers=2))
ava = randomize(musiq_arch.MUSIQ(pretrained=False, num_class=10, hidden_size=8, mlp_dim=16, num_heads=2,
                                 num_layers=1))
with tempfile.TemporaryDirectory() as tmp:
    p1 = os.path.join(tmp, "musiq_koniq_ckpt-random.pth")
    torch.save(one.state_dict(), p1)
    p2 = os.path.join(tmp, "musiq_ava_ckpt-random.pth")
    torch.save({"params": {"module." + k: v for k, v in ava.state_dict().items()}}, p2)
    print(converter.convert(p1, os.path.join(out, "musiq_tiny.safetensors"), num_heads=2))
    print(converter.convert(p2, os.path.join(out, "musiq_tiny_ava.safetensors"), num_heads=2))

one64, ava64 = copy.deepcopy(one).double(), copy.deepcopy(ava).double()

# (height, width): smaller than a patch and than every scale; non-multiples of
# 32; 105x192 and 45x320, whose 224 scales are 122.50000000000001 and
# 31.499999999999996 rows in double (round -> 123 and 31, where exact
# arithmetic would give 122 and 32); 5x448, a tie rounded to even (2.5 -> 2);
# a tall one downscaled at both scales; one downscaled at 224 only.
sizes = [(20, 30), (75, 113), (105, 192), (45, 320), (5, 448), (401, 97), (230, 50)]
rng = np.random.default_rng(5)
probe = torch.from_numpy(rng.standard_normal(3 * 32 * 32).astype(np.float32))
tensors = {"probe": probe}


def image(h, w):
    # Smooth structure plus noise, so the resizes matter.
    yy, xx = np.mgrid[0:h, 0:w]
    base = np.stack([np.sin(xx / (3 + c) + yy / (5 + 2 * c)) for c in range(3)], -1) * 80 + 128
    return np.clip(base + rng.normal(0, 25, (h, w, 3)), 0, 255).astype(np.uint8)


with torch.no_grad():
    for i, (h, w) in enumerate(sizes):
        img = image(h, w)
        x = torch.from_numpy(img).permute(2, 0, 1)[None].float() / 255
        tensors[f"img_{i}"] = torch.from_numpy(img)
        tensors[f"score32_{i}"] = one(x).reshape(-1)
        tensors[f"ava32_{i}"] = ava(x).reshape(-1)
        tensors[f"score_{i}"] = one64(x.double()).reshape(-1)
        tensors[f"ava_{i}"] = ava64(x.double()).reshape(-1)
        t = get_multiscale_patches(x * 2 - 1, longer_side_lengths=[224, 384], max_seq_len_from_original_res=-1)[0]
        keep = t[:, -1] > 0  # the padding tokens (mask 0) are not made by rass
        t = t[keep]
        tensors[f"spatial_{i}"] = t[:, -3].long()
        tensors[f"scale_{i}"] = t[:, -2].long()
        tensors[f"patchsum_{i}"] = t[:, :-3].sum(1)
        tensors[f"patchdot_{i}"] = t[:, :-3] @ probe
    h, w = sizes[0]
    second = image(h, w)
    tensors["img_batch"] = torch.from_numpy(second)
    xb = torch.stack([tensors["img_0"], tensors["img_batch"]]).permute(0, 3, 1, 2).float() / 255
    tensors["batch_scores"] = one64(xb.double()).reshape(-1)
save_file({k: v.contiguous() for k, v in tensors.items()}, os.path.join(out, "musiq_io.safetensors"),
          {"pyiqa": "0.1.16", "torch": torch.__version__, "sizes": str(sizes)})
os.makedirs(os.path.join(out, "..", "iqa"), exist_ok=True)
for k in ("0", "2", "6", "batch"):
    Image.fromarray(tensors[f"img_{k}"].numpy()).save(os.path.join(out, "..", "iqa", f"musiq_{k}.png"))
    if k != "batch":
        print(f"musiq_{k}.png musiq {float(tensors[f'score_{k}']):.9g} musiq-ava {float(tensors[f'ava_{k}']):.9g}")
print("musiq_batch.png musiq", f"{float(tensors['batch_scores'][1]):.9g}")
print("scores", [round(float(tensors[f"score_{i}"]), 4) for i in range(len(sizes))])
print("ava", [round(float(tensors[f"ava_{i}"]), 4) for i in range(len(sizes))])
