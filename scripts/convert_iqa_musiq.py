#!/usr/bin/env python3
"""Converts MUSIQ weights to the safetensors file rass-eval-iqa reads.

    python scripts/convert_iqa_musiq.py musiq_koniq_ckpt-e95806b9.pth musiq_koniq.safetensors

Input: the PyTorch checkpoints users have, pyiqa's releases of the official
MUSIQ weights (musiq_koniq_ckpt-*.pth, musiq_ava_ckpt-*.pth,
musiq_spaq_ckpt-*.pth, musiq_paq2piq_ckpt-*.pth): a state dict, possibly
under a 'params', 'state_dict' or 'model' key, possibly with 'module.'
prefixes. The tensors keep their names (rass's network mirrors them); the
file is checked to be a MUSIQ state dict and the configuration that its
shapes do not tell (the number of attention heads: 6 in every released
model) is written into the file's metadata.

The official JAX .npz checkpoints (google-research musiq/) are not read:
their flax names and kernel layouts differ, and no file of that structure
could be checked here; convert them with pyiqa's port first.

Needs torch (to unpickle the .pth; loaded with weights_only where the torch
version has it) and numpy. Output rass-eval-iqa expects in its --weights
folder: musiq_koniq.safetensors (-m musiq), musiq_ava.safetensors
(musiq-ava), musiq_spaq.safetensors (musiq-spaq), musiq_paq2piq.safetensors
(musiq-paq2piq).

Exit 3 for an unusable input file, 2 when the output exists (--force
replaces it) or is the input itself.
"""
import argparse
import json
import os
import re
import struct
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from iqa_weights import BadInput, run  # noqa: E402

REQUIRED = ["conv_root.weight", "gn_root.weight", "block1.conv1.weight", "block1.conv_proj.weight",
            "embedding.weight", "transformer_encoder.cls", "transformer_encoder.posembed_input.position_emb",
            "transformer_encoder.scaleembed_input.scale_emb", "transformer_encoder.encoder_norm.weight"]


def load_state_dict(path):
    import torch

    if not os.path.isfile(path):
        raise BadInput(f"{path}: no such file")
    try:
        try:
            obj = torch.load(path, map_location="cpu", weights_only=True)
        except TypeError:  # torch < 1.13 has no weights_only
            obj = torch.load(path, map_location="cpu")
    except Exception as e:  # noqa: BLE001 - any unreadable file is bad input
        raise BadInput(f"{path}: not a readable torch checkpoint ({type(e).__name__}: {e})")
    for key in ("params", "state_dict", "model"):
        if isinstance(obj, dict) and key in obj and isinstance(obj[key], dict):
            obj = obj[key]
    if not isinstance(obj, dict):
        raise BadInput(f"{path}: not a state dict")
    out = {}
    for k, v in obj.items():
        if not hasattr(v, "detach"):
            continue
        out[k[len("module."):] if k.startswith("module.") else k] = v.detach().cpu().float().numpy()
    return out


def check(sd, path):
    missing = [k for k in REQUIRED if k not in sd]
    if missing:
        raise BadInput(f"{path}: not a MUSIQ state dict (missing {', '.join(missing)})")
    if "head.weight" not in sd and "head.0.weight" not in sd:
        raise BadInput(f"{path}: no head.weight or head.0.weight")
    layers = {int(m.group(1)) for k in sd for m in [re.match(r"transformer_encoder\.transformer\.encoderblock_(\d+)\.", k)] if m}
    if not layers or sorted(layers) != list(range(len(layers))):
        raise BadInput(f"{path}: encoder blocks are not numbered 0..N-1")
    return len(layers)


def save_safetensors(path, tensors, metadata):
    """The safetensors layout (8-byte header length, JSON header, data), written without the package."""
    header, blobs, pos = {"__metadata__": metadata}, [], 0
    for name in sorted(tensors):
        a = np.ascontiguousarray(tensors[name], dtype="<f4")
        b = a.tobytes()
        header[name] = {"dtype": "F32", "shape": list(a.shape), "data_offsets": [pos, pos + len(b)]}
        blobs.append(b)
        pos += len(b)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    tmp = f"{path}.tmp.{os.getpid()}"
    try:
        with open(tmp, "wb") as f:
            f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def convert(src, dst, num_heads=6, force=True):
    # Checked before reading: --force must never turn the input into the output.
    if os.path.exists(dst) and os.path.exists(src) and os.path.samefile(src, dst):
        raise FileExistsError(f"{dst} is the input; refusing to write over it")
    if os.path.exists(dst) and not force:
        raise FileExistsError(f"{dst} exists (use --force to replace it)")
    sd = load_state_dict(src)
    layers = check(sd, src)
    hidden = sd["embedding.weight"].shape[0]
    if hidden % num_heads:
        raise BadInput(f"{src}: hidden size {hidden} is not a multiple of --num-heads {num_heads}")
    save_safetensors(dst, sd, {"format": "pt", "model": "musiq", "num_heads": str(num_heads),
                               "source": os.path.basename(src)})
    head = sd.get("head.weight", sd.get("head.0.weight"))
    return {"layers": layers, "hidden": hidden, "outputs": int(head.shape[0]), "tensors": len(sd)}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("input", help="pyiqa's musiq_*_ckpt-*.pth (a PyTorch state dict)")
    ap.add_argument("output", help="the .safetensors to write (e.g. musiq_koniq.safetensors)")
    ap.add_argument("--num-heads", type=int, default=6, help="attention heads (6 in the released models)")
    ap.add_argument("--force", action="store_true", help="replace an existing output")
    a = ap.parse_args()
    if a.num_heads < 1:
        ap.error("--num-heads must be a positive integer")

    def go():
        info = convert(a.input, a.output, a.num_heads, a.force)
        print(f"{a.output}: {info['tensors']} tensors, {info['layers']} layers, hidden {info['hidden']}, "
              f"{info['outputs']} output(s)")

    run("convert_iqa_musiq", go)


if __name__ == "__main__":
    main()
