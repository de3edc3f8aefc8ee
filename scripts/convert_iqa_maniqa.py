#!/usr/bin/env python3
"""Convert a MANIQA checkpoint into the file rass-eval-iqa's MANIQA metrics
read from the weights folder (--weights DIR):

    python3 scripts/convert_iqa_maniqa.py ckpt_koniq10k.pt --dataset koniq --output-dir DIR
    python3 scripts/convert_iqa_maniqa.py ckpt_kadid10k.pt --dataset kadid --output-dir DIR
    python3 scripts/convert_iqa_maniqa.py MANIQA_PIPAL-ae6d356b.pth --dataset pipal --output-dir DIR

Inputs: the official releases (github.com/IIGROUP/MANIQA, Apache-2.0:
ckpt_koniq10k.pt, ckpt_kadid10k.pt, state dicts of models/maniqa.py's MANIQA
as predict_one_image.py loads them) or pyiqa's copies (the same files, and
MANIQA_PIPAL-ae6d356b.pth); a dict holding the state dict under "params" or
"state_dict", "module." prefixes (DataParallel) and a whole pickled model
(torch.save(net); needs the MANIQA code importable: --code DIR) are accepted.

Written: DIR/maniqa_<dataset>.safetensors (atomically; --force to replace),
float32, the reference's names unchanged for everything the score uses:
vit.{patch_embed, cls_token, pos_embed, blocks.0-9}, tablock1/2, conv1/2,
swintransformer1/2.layers, fc_score, fc_weight. Dropped: ViT blocks 10-11,
vit.norm/fc_norm/head (never reach the score: MANIQA taps blocks 6-9), the
Swin stages' unused `downsample` conv, and the index buffers
relative_position_index / attn_mask (recomputed by the loader).
Metadata: scale (the Swin residual scale of the training config: 0.8 for
KonIQ and KADID, 0.13 for PIPAL, as pyiqa sets them; --scale overrides),
vit_heads (12 for ViT-B/8; dim / 64), dataset.
"""
import argparse
import json
import os
import re
import struct
import sys

import torch

SCALES = {"koniq": 0.8, "kadid": 0.8, "pipal": 0.13}
DROP = [re.compile(p) for p in (r"vit\.blocks\.(1[0-9]|[2-9][0-9])\.", r"vit\.(norm|fc_norm|head)\.",
                                r"swintransformer\d\.downsample\.", r".*\.relative_position_index$",
                                r".*\.attn_mask$")]
NEED = ["vit.cls_token", "vit.pos_embed", "vit.patch_embed.proj.weight", "vit.blocks.9.attn.qkv.weight",
        "tablock1.0.c_q.weight", "conv1.weight", "conv2.weight", "swintransformer1.layers.0.conv.weight",
        "swintransformer2.layers.0.conv.weight", "fc_score.0.weight", "fc_score.3.weight", "fc_weight.3.weight"]


class BadInput(Exception):
    pass


def load(path, code_dir):
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception:  # noqa: BLE001 - a pickled model needs the full unpickler
        if code_dir:
            sys.path.insert(0, code_dir)
        print(f"convert_iqa_maniqa: {path} is not a plain state dict; unpickling it fully "
              "(only convert files you trust)", file=sys.stderr)
        try:
            obj = torch.load(path, map_location="cpu", weights_only=False)
        except Exception as e:  # noqa: BLE001
            raise BadInput(f"{path}: not a readable torch checkpoint ({type(e).__name__}: {e}); "
                           "a pickled model needs --code pointing at the MANIQA repository")
    if isinstance(obj, torch.nn.Module):
        obj = obj.state_dict()
    for k in ("params", "state_dict"):
        if isinstance(obj, dict) and k in obj and isinstance(obj[k], dict):
            obj = obj[k]
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise BadInput(f"{path}: not a state dict of tensors")
    return {k[len("module."):] if k.startswith("module.") else k: v for k, v in obj.items()}


def convert(sd, path):
    missing = [k for k in NEED if k not in sd]
    if missing:
        raise BadInput(f"{path}: missing {', '.join(missing)}: not a MANIQA checkpoint")
    return {k: v.detach().float().contiguous() for k, v in sd.items() if not any(p.match(k) for p in DROP)}


def safetensors_bytes(tensors, metadata):
    header, blobs, offset = {}, [], 0
    for name in sorted(tensors):
        data = tensors[name].numpy().tobytes()
        header[name] = {"dtype": "F32", "shape": list(tensors[name].shape), "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    header["__metadata__"] = metadata
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text)) + text + b"".join(blobs)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("checkpoint")
    ap.add_argument("--dataset", required=True, choices=sorted(SCALES), help="what the weights were trained on")
    ap.add_argument("--output-dir", default=".")
    ap.add_argument("--scale", type=float, help="Swin residual scale (default: koniq/kadid 0.8, pipal 0.13)")
    ap.add_argument("--vit-heads", type=int, help="ViT attention heads (default: width / 64, 12 for ViT-B/8)")
    ap.add_argument("--code", help="the MANIQA repository, for a whole pickled model")
    ap.add_argument("--force", action="store_true")
    a = ap.parse_args(argv)
    try:
        tensors = convert(load(a.checkpoint, a.code), a.checkpoint)
        dim = tensors["vit.cls_token"].shape[-1]
        meta = {"format": "pt", "converter": "convert_iqa_maniqa.py", "source": os.path.basename(a.checkpoint),
                "dataset": a.dataset, "scale": repr(a.scale or SCALES[a.dataset]),
                "vit_heads": str(a.vit_heads or dim // 64)}
        out = os.path.join(a.output_dir, f"maniqa_{a.dataset}.safetensors")
        if os.path.exists(out) and not a.force:
            raise FileExistsError(f"{out} exists (use --force to replace it)")
        os.makedirs(a.output_dir, exist_ok=True)
        tmp = f"{out}.tmp.{os.getpid()}"
        try:
            with open(tmp, "wb") as f:
                f.write(safetensors_bytes(tensors, meta))
            os.replace(tmp, out)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
        print(f"wrote {out} ({len(tensors)} tensors, scale {meta['scale']})", file=sys.stderr)
    except (BadInput, FileExistsError) as e:
        print(f"convert_iqa_maniqa: {e}", file=sys.stderr)
        return 3
    return 0


if __name__ == "__main__":
    sys.exit(main())
