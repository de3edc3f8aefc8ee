#!/usr/bin/env python3
"""Converts LPIPS v0.1 weights into the one safetensors file rass-eval-iqa's
`lpips` (alex) / `lpips-vgg` (vgg) metric reads from its --weights folder
(lpips_alex.safetensors, lpips_vgg.safetensors), with the official LPIPS
module's state-dict keys (scaling_layer.*, net.sliceK.N.*, linK.model.1.weight).

From the files users have:
  --trunk   torchvision's ImageNet weights: alexnet-owt-7be5be79.pth or
            vgg16-397923af.pth (in ~/.cache/torch/hub/checkpoints/); keys
            features.N.weight/bias (the classifier is dropped);
  --lin     the official heads: weights/v0.1/alex.pth or vgg.pth of the lpips
            package / PerceptualSimilarity repository (keys linK.model.1.weight);
            default: the installed lpips package's file;
or
  --state-dict  one file with every key already (net.sliceK.N.*, linK...), e.g.
            torch.save(lpips.LPIPS(net='alex').state_dict(), 'lpips_alex.pth').

  python3 scripts/convert_iqa_lpips.py alex --trunk alexnet-owt-7be5be79.pth -o weights/lpips_alex.safetensors
  python3 scripts/convert_iqa_lpips.py vgg --trunk vgg16-397923af.pth -o weights/lpips_vgg.safetensors

Needs only torch. Exit 3 for unusable input files, 2 when the output exists (--force).
"""
import argparse
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from iqa_weights import BadInput, check_shapes, load_checkpoint, run, write_safetensors  # noqa: E402

TOOL = "convert_iqa_lpips"
# The convs of torchvision's `features` (index, kernel) and the index ranges of
# LPIPS's five slices (lpips/pretrained_networks.py).
CONVS = {"alex": [(0, 11), (3, 5), (6, 3), (8, 3), (10, 3)],
         "vgg": [(i, 3) for i in (0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28)]}
SLICES = {"alex": [0, 2, 5, 8, 10, 12], "vgg": [0, 4, 9, 16, 23, 30]}
SHIFT = [-.030, -.088, -.188]  # lpips.ScalingLayer
SCALE = [.458, .448, .450]


def slice_of(net, index):
    b = SLICES[net]
    for k in range(5):
        if b[k] <= index < b[k + 1]:
            return k + 1
    raise BadInput(f"features.{index} is outside LPIPS's {net} slices")


def default_lin(net):
    try:
        import lpips  # noqa: F401 - only to find its weights folder
    except ImportError:
        raise BadInput("--lin not given and the lpips package is not installed (pip install lpips, or pass "
                       f"PerceptualSimilarity's lpips/weights/v0.1/{net}.pth)")
    return os.path.join(os.path.dirname(lpips.__file__), "weights", "v0.1", f"{net}.pth")


def gather(args):
    out = {}
    if args.state_dict:
        if args.trunk or args.lin:
            raise BadInput("--state-dict holds everything: give it alone, not with --trunk or --lin")
        sd = load_checkpoint(args.state_dict, TOOL)
        for k, v in sd.items():
            # LPIPS.state_dict() lists each head twice: linK and its alias lins.K (one ModuleList).
            if k.startswith("lins."):
                alias = "lin" + k[len("lins."):]
                if alias not in sd or not torch.equal(sd[alias], v):
                    raise BadInput(f"{args.state_dict}: {k} is not the same tensor as {alias}")
                continue
            out[k.replace(".model.0.weight", ".model.1.weight") if k.startswith("lin") else k] = v
    else:
        if not args.trunk:
            raise BadInput("give --trunk (torchvision's ImageNet weights) [--lin], or --state-dict")
        trunk = load_checkpoint(args.trunk, TOOL)
        for k, v in trunk.items():
            if k.startswith("classifier."):
                continue
            parts = k.split(".")
            if len(parts) != 3 or parts[0] != "features" or not parts[1].isdigit():
                raise BadInput(f"{args.trunk}: unexpected key '{k}' (expected torchvision's features.N.weight/bias)")
            out[f"net.slice{slice_of(args.net, int(parts[1]))}.{parts[1]}.{parts[2]}"] = v
        lin_path = args.lin or default_lin(args.net)
        for k, v in load_checkpoint(lin_path, TOOL).items():
            # NetLinLayer without dropout names the conv model.0; the official files have model.1.
            k = k.replace(".model.0.weight", ".model.1.weight")
            if not (k.startswith("lin") and k.endswith(".model.1.weight")):
                raise BadInput(f"{lin_path}: unexpected key '{k}' (expected linK.model.1.weight)")
            out[k] = v
    out.setdefault("scaling_layer.shift", torch.tensor(SHIFT).view(1, 3, 1, 1))
    out.setdefault("scaling_layer.scale", torch.tensor(SCALE).view(1, 3, 1, 1))
    return out


def expected_shapes(net, tensors, what):
    """The official module's keys; the widths come from the trunk (narrow test trunks keep the geometry)."""
    exp = {"scaling_layer.shift": [1, 3, 1, 1], "scaling_layer.scale": [1, 3, 1, 1]}
    cin, taps = 3, {}
    for index, k in CONVS[net]:
        key = f"net.slice{slice_of(net, index)}.{index}"
        if f"{key}.weight" not in tensors:
            raise BadInput(f"{what}: no {key}.weight (is this an LPIPS {net} trunk?)")
        w = tensors[f"{key}.weight"].shape[0]
        exp[f"{key}.weight"], exp[f"{key}.bias"] = [w, cin, k, k], [w]
        cin = w
        taps[slice_of(net, index)] = w  # each slice is tapped after its last conv's ReLU
    for k in range(5):
        exp[f"lin{k}.model.1.weight"] = [1, taps[k + 1], 1, 1]
    return exp


def convert(args):
    tensors = gather(args)
    check_shapes(tensors, expected_shapes(args.net, tensors, args.state_dict or args.trunk),
                 f"LPIPS {args.net} weights")
    write_safetensors(args.output, tensors, {"format": "pt", "metric": "lpips", "net": args.net, "version": "0.1"},
                      args.force)
    print(f"{TOOL}: wrote {args.output} ({len(tensors)} tensors)", file=sys.stderr)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("net", choices=["alex", "vgg"])
    ap.add_argument("--trunk", help="torchvision ImageNet state dict (alexnet-owt-*.pth / vgg16-*.pth)")
    ap.add_argument("--lin", help="LPIPS v0.1 heads (weights/v0.1/<net>.pth; default: the lpips package's)")
    ap.add_argument("--state-dict", help="a full LPIPS state dict instead of --trunk/--lin")
    ap.add_argument("-o", "--output", required=True, help="output .safetensors")
    ap.add_argument("--force", action="store_true", help="replace an existing output")
    args = ap.parse_args()
    run(TOOL, lambda: convert(args))


if __name__ == "__main__":
    main()
