#!/usr/bin/env python3
"""Converts DISTS weights into the one safetensors file rass-eval-iqa's `dists`
metric reads from its --weights folder (dists.safetensors), with the official
DISTS module's state-dict keys (stageK.N.weight/bias, stageK.N.filter, mean,
std, alpha, beta).

From the files users have:
  --trunk   torchvision's ImageNet VGG16: vgg16-397923af.pth (in
            ~/.cache/torch/hub/checkpoints/); keys features.N.* (the
            classifier is dropped);
  --dists   the official alpha/beta: DISTS_pytorch/weights.pt of the DISTS
            repository or the DISTS-pytorch pip package (default: the
            installed package's file); a file that also holds stageK.* keys
            (a full DISTS state dict) is taken as it is;
or
  --state-dict  one file with every key, e.g. torch.save(DISTS().state_dict(), 'dists.pth').

  python3 scripts/convert_iqa_dists.py --trunk vgg16-397923af.pth -o weights/dists.safetensors

The L2-pooling windows and the ImageNet mean/std are the reference's constants
when a file lacks them. Needs only torch (and numpy). Exit 3 for unusable
input files, 2 when the output exists (--force).
"""
import argparse
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from iqa_weights import BadInput, check_shapes, load_checkpoint, run, write_safetensors  # noqa: E402

TOOL = "convert_iqa_dists"
CONVS = [0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28]  # torchvision VGG16 `features`
STAGES = [0, 4, 9, 16, 23, 30]  # DISTS's stage boundaries; each of 4, 9, 16, 23 is an L2 pooling
POOLS = [4, 9, 16, 23]


def stage_of(index):
    for k in range(5):
        if STAGES[k] <= index < STAGES[k + 1]:
            return k + 1
    raise BadInput(f"features.{index} is outside DISTS's VGG16 stages")


def hann_window(channels):
    """DISTS_pt.L2pooling(filter_size=5): the outer product of np.hanning(5)[1:-1], normalised, per channel."""
    a = np.hanning(5)[1:-1]
    g = torch.Tensor(a[:, None] * a[None, :])
    g = g / torch.sum(g)
    return g[None, None, :, :].repeat((channels, 1, 1, 1))


def default_dists():
    try:
        import DISTS_pytorch  # noqa: F401 - only to find its weights.pt
    except ImportError:
        raise BadInput("--dists not given and the DISTS-pytorch package is not installed (pip install DISTS-pytorch, "
                       "or pass the repository's DISTS_pytorch/weights.pt)")
    return os.path.join(os.path.dirname(DISTS_pytorch.__file__), "weights.pt")


def gather(args):
    out = {}
    if args.state_dict:
        if args.trunk or args.dists:
            raise BadInput("--state-dict holds everything: give it alone, not with --trunk or --dists")
        out.update(load_checkpoint(args.state_dict, TOOL))
    else:
        if args.trunk:
            for k, v in load_checkpoint(args.trunk, TOOL).items():
                if k.startswith("classifier."):
                    continue
                parts = k.split(".")
                if len(parts) != 3 or parts[0] != "features" or not parts[1].isdigit():
                    raise BadInput(f"{args.trunk}: unexpected key '{k}' (expected torchvision's features.N.weight/bias)")
                out[f"stage{stage_of(int(parts[1]))}.{parts[1]}.{parts[2]}"] = v
        path = args.dists or default_dists()
        weights = load_checkpoint(path, TOOL)
        if not args.trunk and not any(k.startswith("stage") for k in weights):
            raise BadInput(f"give --trunk (torchvision's VGG16): {path} holds no trunk")
        out.update(weights)
    for i, p in enumerate(POOLS):
        conv = f"stage{i + 1}.{p - 2}.weight"  # the conv (then ReLU) before the pool
        if conv in out:
            out.setdefault(f"stage{i + 2}.{p}.filter", hann_window(out[conv].shape[0]))
    out.setdefault("mean", torch.tensor([0.485, 0.456, 0.406]).view(1, -1, 1, 1))
    out.setdefault("std", torch.tensor([0.229, 0.224, 0.225]).view(1, -1, 1, 1))
    return out


def expected_shapes(tensors, what):
    exp = {"mean": [1, 3, 1, 1], "std": [1, 3, 1, 1]}
    cin, chns = 3, [3]
    for n, index in enumerate(CONVS):
        key = f"stage{stage_of(index)}.{index}"
        if f"{key}.weight" not in tensors:
            raise BadInput(f"{what}: no {key}.weight (is this a DISTS VGG16 trunk?)")
        w = tensors[f"{key}.weight"].shape[0]
        exp[f"{key}.weight"], exp[f"{key}.bias"] = [w, cin, 3, 3], [w]
        if index + 2 in POOLS + [30]:  # the stage's last conv: its ReLU is tapped
            chns.append(w)
            if index + 2 in POOLS:
                exp[f"stage{stage_of(index) + 1}.{index + 2}.filter"] = [w, 1, 3, 3]
        cin = w
    exp["alpha"] = exp["beta"] = [1, sum(chns), 1, 1]
    return exp


def convert(args):
    tensors = gather(args)
    check_shapes(tensors, expected_shapes(tensors, args.state_dict or args.trunk), "DISTS weights")
    write_safetensors(args.output, tensors, {"format": "pt", "metric": "dists"}, args.force)
    print(f"{TOOL}: wrote {args.output} ({len(tensors)} tensors)", file=sys.stderr)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--trunk", help="torchvision ImageNet VGG16 state dict (vgg16-397923af.pth)")
    ap.add_argument("--dists", help="DISTS alpha/beta (DISTS_pytorch/weights.pt; default: the pip package's)")
    ap.add_argument("--state-dict", help="a full DISTS state dict instead of --trunk/--dists")
    ap.add_argument("-o", "--output", required=True, help="output .safetensors")
    ap.add_argument("--force", action="store_true", help="replace an existing output")
    args = ap.parse_args()
    run(TOOL, lambda: convert(args))


if __name__ == "__main__":
    main()
