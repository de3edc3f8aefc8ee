"""Shared by the deep-IQA weight converters (scripts/convert_iqa_*.py): read a
torch checkpoint without running pickled code where torch allows, rename its
keys, check the result against the key set and shapes the C++ loader expects,
and write one safetensors file atomically. Needs only torch."""
import json
import os
import struct
import sys

import torch

DTYPES = {torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16", torch.float64: "F64"}


class BadInput(Exception):
    pass


def load_checkpoint(path, tool):
    """A state dict from a .pth/.pt file (a bare dict, or one under 'state_dict'/'params'/'model')."""
    if not os.path.isfile(path):
        raise BadInput(f"{path}: no such file")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except TypeError:  # a torch without weights_only (< 1.13)
        print(f"{tool}: warning: this torch has no weights_only; loading {path} with the full unpickler "
              "(only convert checkpoints you trust)", file=sys.stderr)
        ckpt = torch.load(path, map_location="cpu")
    except Exception as e:  # noqa: BLE001 - any unreadable file is bad input
        raise BadInput(f"{path}: not a readable torch checkpoint ({type(e).__name__}: {e})")
    for key in ("state_dict", "params", "model"):
        if isinstance(ckpt, dict) and key in ckpt and isinstance(ckpt[key], dict):
            ckpt = ckpt[key]
    if not isinstance(ckpt, dict) or not all(torch.is_tensor(v) for v in ckpt.values()):
        raise BadInput(f"{path}: not a state dict of tensors")
    # A model saved from DataParallel carries 'module.' on every key.
    if ckpt and all(k.startswith("module.") for k in ckpt):
        ckpt = {k[len("module."):]: v for k, v in ckpt.items()}
    return ckpt


def check_shapes(tensors, expected, what):
    """`expected`: name -> shape (None: any shape). Names every missing, extra and mis-shaped tensor."""
    missing = sorted(set(expected) - set(tensors))
    extra = sorted(set(tensors) - set(expected))
    bad = [f"{k}: {list(tensors[k].shape)} vs {list(expected[k])}" for k in sorted(set(expected) & set(tensors))
           if expected[k] is not None and list(tensors[k].shape) != list(expected[k])]
    problems = []
    if missing:
        problems.append("missing " + ", ".join(missing[:8]) + (" ..." if len(missing) > 8 else ""))
    if extra:
        problems.append("unexpected " + ", ".join(extra[:8]) + (" ..." if len(extra) > 8 else ""))
    if bad:
        problems.append("mis-shaped " + "; ".join(bad[:8]))
    if problems:
        raise BadInput(f"{what}: " + " | ".join(problems))


def write_safetensors(path, tensors, metadata, force):
    """The safetensors format (8-byte header length, JSON header, data), fp32,
    tensors sorted by name, written to a temporary name and renamed."""
    if os.path.exists(path) and not force:
        raise FileExistsError(f"{path} exists (use --force to replace it)")
    header, blobs, offset = {}, [], 0
    for name in sorted(tensors):
        t = tensors[name].detach().cpu().to(torch.float32).contiguous()
        data = t.view(torch.uint8).numpy().tobytes() if t.numel() else b""
        header[name] = {"dtype": "F32", "shape": list(t.shape), "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    header["__metadata__"] = {k: str(v) for k, v in metadata.items()}
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    tmp = f"{path}.tmp.{os.getpid()}"
    try:
        with open(tmp, "wb") as f:
            f.write(struct.pack("<Q", len(text)))
            f.write(text)
            for b in blobs:
                f.write(b)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def run(tool, convert):
    """Runs convert(); bad input -> message and exit 3, an existing output -> exit 2."""
    try:
        convert()
    except BadInput as e:
        print(f"{tool}: {e}", file=sys.stderr)
        sys.exit(3)
    except FileExistsError as e:
        print(f"{tool}: {e}", file=sys.stderr)
        sys.exit(2)
