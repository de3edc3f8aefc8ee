#!/usr/bin/env python3
"""Golden statistics of the RAS projection and Mask2Former head as the
released training starts them (what rass-merge-lora init-seg writes to
seg_head.safetensors; tests/nn/test_seg_head_init.cpp compares):

    /tmp/loravenv/bin/pip install fvcore
    MASK2FORMER_SRC=/path/to/Mask2Former /tmp/loravenv/bin/python \\
        tests/nn/make_seg_head_init_fixture.py tests/fixtures/nn/seg_head_init.json

The head is Mask2Former's own MaskFormerHead (MSDeformAttnPixelDecoder +
MultiScaleMaskedTransformerDecoder, built by tests/nn/mask2former_reference.py)
at the released configuration (REFERENCE.md 4), so its constructors run their
own initialisations. The projection is RASS's FeatureProjection: one
detectron2 BottleneckBlock (GN) per tap, dims 256, 512, 1280, 1280, 640, 320,
projection_dim 512; detectron2's BottleneckBlock.__init__ ends with
`for layer in [conv1, conv2, conv3, shortcut]: if layer is not None:
weight_init.c2_msra_fill(layer)`, which is applied here with fvcore's real
function to the stand-in block of tests/nn/rass_reference.py (a forward-only
copy that leaves the init out). The detectron2 checkpoint RASS names
(MODEL.WEIGHTS R-50.pkl) holds no key of these modules, so this is where
training starts.

Random draws cannot be matched one to one (the order differs), so per
parameter the file records what the init makes of it: every value when two
seeds give the same tensor (a constant: zeros, ones; or every value:
MSDeformAttn's sampling-offset grid),
else the distribution's signature: mean, std, mean |x| / std (0.866 for a
uniform, 0.798 for a normal) and max |x| (a uniform's bound), each from the
union of 3 seeds' draws.
"""
import json
import os
import sys

import torch
from torch import nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mask2former_reference as m2f  # noqa: E402
import rass_reference as rr  # noqa: E402
from fvcore.nn import weight_init  # noqa: E402

DIMS = [256, 512, 1280, 1280, 640, 320]
PROJECTION_DIM = 512


def build(seed):
    torch.manual_seed(seed)
    m2f.setup()
    params = {}
    projections = nn.ModuleList()
    for d in DIMS:
        block = rr.BottleneckBlock(d, PROJECTION_DIM, bottleneck_channels=PROJECTION_DIM // 4, norm="GN")
        for layer in [block.conv1, block.conv2, block.conv3, block.shortcut]:
            if layer is not None:
                weight_init.c2_msra_fill(layer)
        projections.append(nn.Sequential(block))
    for k, v in projections.state_dict().items():
        params["feature_projections." + k] = v
    head = m2f.build_head()  # the released configuration (m2f.DEFAULTS)
    for k, v in head.state_dict().items():
        params["sem_seg_head." + k] = v
    return params


def main():
    out = sys.argv[1]
    runs = [build(s) for s in (0, 1, 2)]
    record = {"config": m2f.full_config(), "projection": {"feature_dims": DIMS, "projection_dim": PROJECTION_DIM},
              "params": {}}
    for name, t0 in runs[0].items():
        t0 = t0.double()
        entry = {"shape": list(t0.shape)}
        if all(torch.equal(t0, r[name].double()) for r in runs[1:]):
            flat = t0.flatten()
            if torch.all(flat == flat[0]):
                entry["constant"] = flat[0].item()
            else:
                entry["values"] = flat.tolist()
        else:
            x = torch.cat([r[name].double().flatten() for r in runs])
            std = x.std().item()
            entry.update(mean=x.mean().item(), std=std, abs_over_std=(x.abs().mean().item() / std),
                         max_abs=x.abs().max().item(), samples=x.numel())
        record["params"][name] = entry
    with open(out, "w") as f:
        json.dump(record, f, indent=0, sort_keys=True)
        f.write("\n")
    print(f"{out}: {len(record['params'])} parameters")


if __name__ == "__main__":
    main()
