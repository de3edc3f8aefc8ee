#!/usr/bin/env python3
"""Golden fixture of the Mask2Former head (lib/rass/nn/mask_former_head.hpp),
computed by Mask2Former's own modules (tests/nn/mask2former_reference.py says
which detectron2 pieces are stood in):

    /tmp/loravenv/bin/pip install fvcore
    MASK2FORMER_SRC=/path/to/Mask2Former /tmp/loravenv/bin/python \\
        tests/nn/make_mask2former_fixture.py tests/fixtures/nn

Writes, in the given folder:
  mask2former_tiny.json        the small head config (keys of MaskFormerHeadConfig)
  mask2former_tiny.safetensors MaskFormerHead.state_dict() of that config, every
                               tensor randomised (not the init's zeros and ones)
  mask2former_tiny_io.safetensors
      core.{value,locations,weights,out}  ms_deform_attn_core_pytorch on random
                 values, sampling points partly outside [0, 1] (zero padding),
                 3 levels of non-square sizes (metadata core_shapes)
      msda.{query,ref,input,out} and msda.param.*  an MSDeformAttn module
                 (metadata msda: its sizes and shapes)
      feat.res2..res5          head inputs, batch 2, res2 32x24 (non-square)
      pix.mask_features, pix.ms0..ms2  the pixel decoder's forward_features
      pred_logits, pred_masks, aux.<i>.logits, aux.<i>.masks  the head's outputs
      semseg                   semantic_inference of the final outputs
      (metadata masked_rows: per prediction, how many (query, head) rows of
      the attention mask it makes are fully masked (the reference unmasks
      them) and partly masked; the tiny config has both)
  mask2former_prenorm.json / mask2former_prenorm.safetensors / _io
      a second small config: pre_norm true and conv_dim == hidden_dim (the
      predictor's input_proj is then an empty Sequential), same inputs
      (feat.*), outputs pred_logits, pred_masks
  mask2former_keys.json
      {"tiny": {key: shape}, "released": {key: shape}, "released_params": n}:
      the state-dict keys of the tiny head and of the head in RASS's released
      configuration (all defaults), and the latter's parameter count.
"""
import json
import math
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mask2former_reference as m2f  # noqa: E402
import st_write  # noqa: E402

TINY = dict(num_classes=5, num_queries=7, hidden_dim=32, nheads=2, dim_feedforward=80, dec_layers=5,
            mask_dim=48, conv_dim=64, enc_layers=3, enc_dim_feedforward=96, enc_nheads=4,
            in_channels=[24, 40, 56, 72])
PRENORM = dict(TINY, pre_norm=True, conv_dim=32, hidden_dim=32, enc_nheads=2, dec_layers=4)


def randomize(module, gen):
    """Every tensor random: the init leaves zeros (biases, attention weights)
    and ones (norms) that would hide a wrong parameter wiring."""
    with torch.no_grad():
        norms = set()
        for mname, m in module.named_modules():
            if isinstance(m, (torch.nn.LayerNorm, torch.nn.GroupNorm)):
                m.weight.copy_(1 + 0.2 * torch.randn(m.weight.shape, generator=gen))
                m.bias.copy_(0.2 * torch.randn(m.bias.shape, generator=gen))
                norms.update({m.weight, m.bias})
        for name, p in module.named_parameters():
            if any(p is n for n in norms):
                continue
            if p.dim() > 1 and not name.endswith(("query_feat.weight", "query_embed.weight", "level_embed.weight")) \
                    and not name.endswith("level_embed"):
                p.copy_(torch.randn(p.shape, generator=gen) / math.sqrt(p[0].numel()))
            elif name.endswith("sampling_offsets.bias"):
                p.add_(0.3 * torch.randn(p.shape, generator=gen))  # keep the ring of offsets (pixels)
            else:
                p.copy_(0.3 * torch.randn(p.shape, generator=gen))


def np32(t):
    return t.detach().contiguous().numpy().astype(np.float32)


def shapes_of(module):
    return {k: list(v.shape) for k, v in module.state_dict().items()}


def main():
    out_dir = sys.argv[1]
    mods = m2f.setup()
    gen = torch.Generator().manual_seed(20261202)
    io = {}

    # (1) the core on its own: 3 non-square levels, N 2, heads 3, 4 channels.
    core_shapes = [(6, 5), (3, 4), (2, 2)]
    N, M, D, Lq, P = 2, 3, 4, 9, 3
    S = sum(h * w for h, w in core_shapes)
    value = torch.randn(N, S, M, D, generator=gen)
    locations = torch.rand(N, Lq, M, len(core_shapes), P, 2, generator=gen) * 1.4 - 0.2
    weights = torch.softmax(torch.randn(N, Lq, M, len(core_shapes) * P, generator=gen), -1).view(
        N, Lq, M, len(core_shapes), P)
    core_out = mods["ms_deform_attn_func"].ms_deform_attn_core_pytorch(
        value, torch.tensor(core_shapes), locations, weights)
    io.update({"core.value": value, "core.locations": locations, "core.weights": weights, "core.out": core_out})

    # (1b) the module: d_model 32, 3 levels, 4 heads, 2 points.
    msda = mods["ms_deform_attn"].MSDeformAttn(d_model=32, n_levels=3, n_heads=4, n_points=2)
    randomize(msda, gen)
    q = torch.randn(N, 11, 32, generator=gen)
    ref = torch.rand(N, 11, 3, 2, generator=gen)
    inp = torch.randn(N, S, 32, generator=gen)
    spatial = torch.tensor(core_shapes)
    start = torch.cat((spatial.new_zeros(1), spatial.prod(1).cumsum(0)[:-1]))
    with torch.no_grad():
        io["msda.out"] = msda(q, ref, inp, spatial, start)
    io.update({"msda.query": q, "msda.ref": ref, "msda.input": inp})
    for k, v in msda.state_dict().items():
        io["msda.param." + k] = v

    # (2)-(4) the whole tiny head.
    head = m2f.build_head(TINY)
    randomize(head, gen)
    names = m2f.feature_names(TINY)
    feats = {}
    for i, (n, ch) in enumerate(zip(names, TINY["in_channels"])):
        feats[n] = torch.randn(2, ch, 32 >> i, 24 >> i, generator=gen)
        io["feat." + n] = feats[n]

    # Count the attention-mask rows the reference unmasks (a fully masked row).
    dec = head.predictor
    counts = []
    real_heads = dec.forward_prediction_heads

    def counting(*a, **k):
        c, m, attn = real_heads(*a, **k)
        n = attn.sum(-1)
        counts.append([int((n == attn.shape[-1]).sum()), int(((n > 0) & (n < attn.shape[-1])).sum())])
        return c, m, attn
    dec.forward_prediction_heads = counting
    with torch.no_grad():
        mask_features, _, ms = head.pixel_decoder.forward_features(feats)
        out = head(feats)
    dec.forward_prediction_heads = real_heads
    io["pix.mask_features"] = mask_features
    for i, t in enumerate(ms):
        io[f"pix.ms{i}"] = t
    io["pred_logits"] = out["pred_logits"]
    io["pred_masks"] = out["pred_masks"]
    for i, a in enumerate(out["aux_outputs"]):
        io[f"aux.{i}.logits"] = a["pred_logits"]
        io[f"aux.{i}.masks"] = a["pred_masks"]
    io["semseg"] = m2f.semantic_inference(out["pred_logits"], out["pred_masks"])
    print("(query, head) rows fully / partly masked, per prediction (the last is unused):", counts)
    meta = {"core_shapes": json.dumps(core_shapes), "msda": json.dumps(dict(d_model=32, n_levels=3, n_heads=4, n_points=2)),
            "masked_rows": json.dumps(counts)}
    st_write.save(os.path.join(out_dir, "mask2former_tiny_io.safetensors"),
                  {k: np32(v) for k, v in io.items()}, metadata=meta)
    st_write.save(os.path.join(out_dir, "mask2former_tiny.safetensors"),
                  {k: np32(v) for k, v in head.state_dict().items()})
    with open(os.path.join(out_dir, "mask2former_tiny.json"), "w") as f:
        json.dump(TINY, f, indent=1)

    pre = m2f.build_head(PRENORM)
    randomize(pre, gen)
    with torch.no_grad():
        po = pre(feats)
    st_write.save(os.path.join(out_dir, "mask2former_prenorm_io.safetensors"),
                  {"pred_logits": np32(po["pred_logits"]), "pred_masks": np32(po["pred_masks"])})
    st_write.save(os.path.join(out_dir, "mask2former_prenorm.safetensors"),
                  {k: np32(v) for k, v in pre.state_dict().items()})
    with open(os.path.join(out_dir, "mask2former_prenorm.json"), "w") as f:
        json.dump(PRENORM, f, indent=1)

    released = m2f.build_head({})
    keys = {"tiny": shapes_of(head), "released": shapes_of(released),
            "released_params": sum(p.numel() for p in released.parameters())}
    with open(os.path.join(out_dir, "mask2former_keys.json"), "w") as f:
        json.dump(keys, f, indent=0, sort_keys=True)
    print("released head parameters:", keys["released_params"])


if __name__ == "__main__":
    main()
