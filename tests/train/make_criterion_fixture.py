"""Golden fixture for rass::train::mask2former_loss: Mask2Former's own
SetCriterion and HungarianMatcher (mask2former/modeling/criterion.py and
matcher.py) with detectron2 PointRend's point_features.py, run on small random
inputs, every torch.rand draw recorded so the C++ test replays them.

Sources (kept outside this repository):
  MASK2FORMER_SRC  a checkout of github:facebookresearch/Mask2Former
                   (commit 9b0651c6c1d5b3af2e6da0589b719c514ec0d69a used)
  DETECTRON2_SRC   a checkout of github:facebookresearch/detectron2
                   (commit 02b5c4e295e990042a714712c21dc79b731e8833 used); only
                   projects/PointRend/point_rend/point_features.py is loaded
Needs torch, torchvision (mask2former/utils/misc.py imports it) and scipy (the
matcher's linear_sum_assignment): /tmp/loravenv has them.

detectron2 is not installed, so the few names these files import from it are
stood in, each written from detectron2's source at the commit above:
  detectron2.utils.comm.get_world_size   returns 1 (one process)
  detectron2.layers.cat                  torch.cat, or the tensor itself when
                                         the list has one element (layers/wrappers.py)
  detectron2.layers.shapes_to_tensor,
  detectron2.structures.BitMasks, Boxes  placeholders that raise when used:
                                         point_features.py imports them for
                                         functions the criterion does not call
Mask2Former's package __init__ files (which import the whole model and
detectron2) are skipped: the packages are created empty with their real
__path__, so only criterion.py, matcher.py and utils/misc.py run.

The main case (criterion_m2f): B = 3 images, Q = 8 queries, C = 5 classes (+ no object), predicted
masks 16x16, label maps 64x64 (255 = ignore) turned into targets as
MaskFormerSemanticDatasetMapper does (np.unique without the ignore label, one
mask per class); image 1 is all ignore (zero targets). 3 aux predictions,
num_points 64 (oversample 3, importance 0.75), weights class 2 / mask 5 /
dice 5 on every term including aux (MaskFormer.__init__'s weight_dict).

A second case (criterion_m2f_fewq): B = 2, Q = 3 queries against 5 and 2
targets (so some targets stay unmatched), 1 aux prediction, num_points 32.

Writes tests/fixtures/train/criterion_<case>.safetensors:
  in.logits, in.masks, in.aux<i>.logits, in.aux<i>.masks   predictions (F32)
  in.label_map                                             [B, 64, 64] I32
  draw.<k>               the k-th torch.rand draw, in call order (F32)
  term.<name>            every unweighted loss term, [1] F32; total [1] F32
  match.<l>.<b>          matched (query, target) of prediction l (0 final,
                         1 + i aux i), image b, [n, 2] I64 sorted by query
  grad.logits, grad.masks, grad.aux<i>.logits, grad.aux<i>.masks
                         d total / d prediction (F32)
metadata: draws (count), aux (count), num_points, num_classes.

Usage (from the repository root):
    MASK2FORMER_SRC=/path/Mask2Former DETECTRON2_SRC=/path/detectron2 \\
        /tmp/loravenv/bin/python tests/train/make_criterion_fixture.py
"""
import importlib
import importlib.util
import json
import os
import sys
import types

import numpy as np
import torch

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "nn"))
import st_write  # noqa: E402


def _module(name, **attrs):
    m = types.ModuleType(name)
    m.__dict__.update(attrs)
    sys.modules[name] = m
    return m


def _cat(tensors, dim=0):
    assert isinstance(tensors, (list, tuple))
    if len(tensors) == 1:
        return tensors[0]
    return torch.cat(tensors, dim)


def _unused(name):
    def f(*args, **kwargs):
        raise NotImplementedError(f"stand-in {name}: not used by the criterion")
    return f


def setup():
    m2f = os.environ.get("MASK2FORMER_SRC")
    d2 = os.environ.get("DETECTRON2_SRC")
    if not m2f or not d2:
        sys.exit("set MASK2FORMER_SRC and DETECTRON2_SRC to checkouts of Mask2Former and detectron2")
    # misc.py imports torchvision, which imports transformers, which probes
    # for a real detectron2 and fails on the stand-in package: import it first.
    import torchvision  # noqa: F401
    _module("detectron2", __path__=[])
    _module("detectron2.utils", __path__=[])
    _module("detectron2.utils.comm", get_world_size=lambda: 1)
    _module("detectron2.layers", cat=_cat, shapes_to_tensor=_unused("shapes_to_tensor"))
    _module("detectron2.structures", BitMasks=_unused("BitMasks"), Boxes=_unused("Boxes"))
    _module("detectron2.projects", __path__=[])
    _module("detectron2.projects.point_rend", __path__=[])
    path = os.path.join(d2, "projects", "PointRend", "point_rend", "point_features.py")
    spec = importlib.util.spec_from_file_location("detectron2.projects.point_rend.point_features", path)
    pf = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = pf
    spec.loader.exec_module(pf)
    root = os.path.join(m2f, "mask2former")
    for pkg in ("", ".modeling", ".utils"):
        _module("mask2former" + pkg, __path__=[os.path.join(root, *pkg.split(".")[1:])])
    crit = importlib.import_module("mask2former.modeling.criterion")
    match = importlib.import_module("mask2former.modeling.matcher")
    return crit, match


def label_maps(gen, classes, h, w):
    """Blocky random label maps (a rectangle per class, over ignore)."""
    b = len(classes)
    maps = torch.full((b, h, w), 255, dtype=torch.int64)
    for i in range(b):
        for c in classes[i]:
            y0, x0 = torch.randint(0, h - 8, (2,), generator=gen).tolist()
            dy, dx = torch.randint(8, h // 2, (2,), generator=gen).tolist()
            maps[i, y0:y0 + dy, x0:x0 + dx] = c
    return maps


def targets_of(maps):
    """MaskFormerSemanticDatasetMapper: classes present (ignore removed), one mask each."""
    out = []
    for m in maps.numpy():
        classes = np.unique(m)
        classes = classes[classes != 255]
        masks = [m == c for c in classes]
        out.append({
            "labels": torch.tensor(classes, dtype=torch.int64),
            "masks": (torch.from_numpy(np.stack(masks)) if masks else torch.zeros(0, m.shape[0], m.shape[1])).float(),
        })
    return out


def run_case(crit_mod, match_mod, name, classes, Q, AUX, P, seed):
    B, C, HP, HT = len(classes), 5, 16, 64
    gen = torch.Generator().manual_seed(seed)
    maps = label_maps(gen, classes, HT, HT)
    targets = targets_of(maps)
    # Rectangles may cover each other: print what is left.
    print(name, "targets per image:", [t["labels"].tolist() for t in targets])

    def pred():
        lg = (torch.randn(B, Q, C + 1, generator=gen) * 2).requires_grad_()
        mk = (torch.randn(B, Q, HP, HP, generator=gen) * 3).requires_grad_()
        return lg, mk
    final = pred()
    aux = [pred() for _ in range(AUX)]
    outputs = {"pred_logits": final[0], "pred_masks": final[1],
               "aux_outputs": [{"pred_logits": a[0], "pred_masks": a[1]} for a in aux]}

    matcher = match_mod.HungarianMatcher(cost_class=2.0, cost_mask=5.0, cost_dice=5.0, num_points=P)
    weight_dict = {"loss_ce": 2.0, "loss_mask": 5.0, "loss_dice": 5.0}
    for i in range(AUX):
        weight_dict.update({k + f"_{i}": v for k, v in list(weight_dict.items())[:3]})
    criterion = crit_mod.SetCriterion(C, matcher=matcher, weight_dict=weight_dict, eos_coef=0.1,
                                      losses=["labels", "masks"], num_points=P, oversample_ratio=3.0,
                                      importance_sample_ratio=0.75)

    # Record every torch.rand draw (the matcher's and point_features' calls
    # go through the torch module attribute at call time).
    draws = []
    real_rand = torch.rand
    rand_gen = torch.Generator().manual_seed(7)

    def recording_rand(*size, **kw):
        kw.pop("generator", None)
        t = real_rand(*size, generator=rand_gen, **kw)
        draws.append(t.detach().clone())
        return t
    torch.rand = recording_rand

    # Record the matchings, in call order (final, aux 0, aux 1, ...).
    matches = []
    real_forward = matcher.forward

    def recording_forward(outputs, targets):
        idx = real_forward(outputs, targets)
        matches.append(idx)
        return idx
    matcher.forward = recording_forward

    losses = criterion(outputs, targets)
    torch.rand = real_rand
    total = sum(losses[k] * weight_dict[k] for k in losses if k in weight_dict)
    assert set(losses) == set(weight_dict), (sorted(losses), sorted(weight_dict))
    total.backward()

    t = {}
    t["in.logits"], t["in.masks"] = final[0].detach().numpy(), final[1].detach().numpy()
    t["grad.logits"], t["grad.masks"] = final[0].grad.numpy(), final[1].grad.numpy()
    for i, a in enumerate(aux):
        t[f"in.aux{i}.logits"], t[f"in.aux{i}.masks"] = a[0].detach().numpy(), a[1].detach().numpy()
        t[f"grad.aux{i}.logits"], t[f"grad.aux{i}.masks"] = a[0].grad.numpy(), a[1].grad.numpy()
    t["in.label_map"] = maps.numpy().astype(np.int32)
    for k, d in enumerate(draws):
        t[f"draw.{k:03d}"] = d.numpy()
    for k, v in losses.items():
        t["term." + k] = v.detach().reshape(1).numpy().astype(np.float32)
    t["total"] = total.detach().reshape(1).numpy().astype(np.float32)
    for l, idx in enumerate(matches):
        for b, (i, j) in enumerate(idx):
            t[f"match.{l}.{b}"] = np.stack([i.numpy(), j.numpy()], axis=1).reshape(-1, 2).astype(np.int64)
    out = os.path.join(os.path.dirname(__file__), "..", "fixtures", "train", f"criterion_{name}.safetensors")
    meta = {"draws": str(len(draws)), "aux": str(AUX), "num_points": str(P), "num_classes": str(C),
            "terms": json.dumps(sorted(losses)), "torch": torch.__version__}
    st_write.save(out, t, meta)
    print({k: round(float(v), 6) for k, v in losses.items()})
    print("total", float(total), "draws", [tuple(d.shape) for d in draws])
    print("wrote", os.path.normpath(out), os.path.getsize(out), "bytes")


def main():
    crit_mod, match_mod = setup()
    # The main case: 3 images (one without targets), 8 queries, 3 aux layers.
    run_case(crit_mod, match_mod, "m2f", [[0, 2, 3], [], [0, 1, 2, 3, 4]], Q=8, AUX=3, P=64, seed=20260213)
    # Fewer queries than targets: only some targets are matched.
    run_case(crit_mod, match_mod, "m2f_fewq", [[0, 1, 2, 3, 4], [1, 3]], Q=3, AUX=1, P=32, seed=20260214)


if __name__ == "__main__":
    main()
