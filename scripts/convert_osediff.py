#!/usr/bin/env python3
"""Convert an OSEDiff checkpoint (osediff.pkl) or an SCR one (scr.pkl) into
safetensors LoRA files that rass-restore / rass-model load (--lora FILE).

    python3 scripts/convert_osediff.py osediff.pkl [--output-dir DIR] [--unet-only]

Needs only torch (no diffusers, peft or safetensors). The .pkl is the dict
OSEDiff's save_model writes with torch.save:

  rank_unet, rank_vae                       LoRA ranks
  unet_lora_{encoder,decoder,others}_modules  target module names of the
                                            three UNet adapters
  vae_lora_encoder_modules                  targets of the VAE encoder adapter
  state_dict_unet   UNet state-dict entries whose key contains "lora" or
                    "conv_in": PEFT names such as
                    down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_q.lora_A.default_encoder.weight,
                    conv_in.base_layer.{weight,bias} (conv_in is trained fully),
                    conv_in.lora_{A,B}.default_encoder.weight
  state_dict_vae    VAE entries whose key contains "lora" (adapter default_encoder)

SCR checkpoints carry the UNet part only (RASS reads nothing else).

Written, in --output-dir (default: the current folder), named after the .pkl:

  <stem>.unet.safetensors  the three adapters under their PEFT names
      (lora_A.default_encoder, ...), conv_in's trained weights as plain
      conv_in.weight / conv_in.bias (this project's loader replaces the base
      parameters with them), metadata lora_alpha and rank.
  <stem>.vae.safetensors   the VAE encoder adapter (when the .pkl has one and
      --unet-only is not given), same conventions.

lora_alpha: OSEDiff builds LoraConfig(r=rank, ...) without lora_alpha, so
PEFT's default 8 applies and every adapter scales B A by 8 / rank (2.0 at
rank 4). The file records lora_alpha = 8 explicitly (--lora-alpha for a
checkpoint trained otherwise), so no loader has to guess it. All three UNet
adapters are active at once in OSEDiff's inference (set_adapter on the
three); this project's loader activates every adapter in the file.

Outputs are written to a temporary name and renamed; an existing output is
refused unless --force. A .pkl that lacks the expected entries, or whose LoRA
tensors do not match its lists, is refused with the missing names (exit 3).
"""
import argparse
import json
import os
import re
import struct
import sys

import torch

PEFT_DEFAULT_ALPHA = 8.0  # peft.LoraConfig.lora_alpha's default
UNET_ADAPTERS = {
    "default_encoder": "unet_lora_encoder_modules",
    "default_decoder": "unet_lora_decoder_modules",
    "default_others": "unet_lora_others_modules",
}
LORA_KEY = re.compile(r"^(.*)\.lora_([AB])\.([^.]+)\.weight$")

DTYPES = {torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16", torch.float64: "F64"}


class BadInput(Exception):
    pass


def load_pkl(path):
    try:
        # Tensors, ints and lists only: the safe unpickler suffices.
        return torch.load(path, map_location="cpu", weights_only=True)
    except TypeError:  # a torch without weights_only (< 1.13)
        print(f"convert_osediff: warning: this torch has no weights_only; loading {path} with the full unpickler "
              "(only convert checkpoints you trust)", file=sys.stderr)
        return torch.load(path, map_location="cpu")
    except Exception as e:  # noqa: BLE001 - any unreadable file is bad input
        raise BadInput(f"{path}: not a readable torch checkpoint ({type(e).__name__}: {e})")


def require(ckpt, keys, path):
    missing = [k for k in keys if k not in ckpt]
    if missing:
        raise BadInput(f"{path}: missing entries {', '.join(missing)} (not an OSEDiff/SCR checkpoint?)")


def lora_pairs(state, path, what, adapters, rank):
    """{(module, adapter): {"A": t, "B": t}} of a PEFT state dict, checked."""
    pairs = {}
    for key, t in state.items():
        if not isinstance(t, torch.Tensor):
            raise BadInput(f"{path}: {what}[{key!r}] is not a tensor")
        m = LORA_KEY.match(key)
        if not m:
            continue
        module, ab, adapter = m.groups()
        if adapter not in adapters:
            raise BadInput(f"{path}: {what}[{key!r}]: adapter '{adapter}' is not one of {', '.join(adapters)}")
        pairs.setdefault((module, adapter), {})[ab] = t
    for (module, adapter), p in sorted(pairs.items()):
        if set(p) != {"A", "B"}:
            raise BadInput(f"{path}: {what}: {module} ({adapter}) has only lora_{''.join(p)}")
        if p["A"].shape[0] != rank or p["B"].shape[1] != rank:
            raise BadInput(f"{path}: {what}: {module} ({adapter}) has rank {p['A'].shape[0]}, the checkpoint says {rank}")
    return pairs


def check_targets(pairs, adapter, targets, path, what):
    """Every listed target must have its A and B (PEFT matches full names exactly)."""
    have = {m for (m, a) in pairs if a == adapter}
    missing = sorted(set(targets) - have)
    if missing:
        shown = ", ".join(missing[:5]) + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
        raise BadInput(f"{path}: {what} has no LoRA tensors for {len(missing)} listed {adapter} target(s): {shown}")
    extra = sorted(have - set(targets))
    if extra:
        raise BadInput(f"{path}: {what} has LoRA tensors for {len(extra)} module(s) its {adapter} list does not name, "
                       f"e.g. {extra[0]}")


def write_safetensors(path, tensors, metadata, force):
    """The safetensors format (8-byte header length, JSON header, data), written
    atomically, tensors sorted by name."""
    if os.path.exists(path) and not force:
        raise FileExistsError(f"{path} exists (use --force to replace it)")
    header, blobs, offset = {}, [], 0
    for name in sorted(tensors):
        t = tensors[name].detach().cpu().contiguous()
        if t.dtype not in DTYPES:
            raise BadInput(f"tensor {name} has dtype {t.dtype}, not a float type")
        data = t.view(torch.uint8).numpy().tobytes() if t.numel() else b""
        header[name] = {"dtype": DTYPES[t.dtype], "shape": list(t.shape), "data_offsets": [offset, offset + len(data)]}
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
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def convert(args):
    path = args.pkl
    if not os.path.isfile(path):
        raise BadInput(f"{path}: no such file")
    ckpt = load_pkl(path)
    if not isinstance(ckpt, dict):
        raise BadInput(f"{path}: holds a {type(ckpt).__name__}, not the dict OSEDiff saves")
    require(ckpt, ["rank_unet", *UNET_ADAPTERS.values(), "state_dict_unet"], path)
    rank = int(ckpt["rank_unet"])
    state = ckpt["state_dict_unet"]
    pairs = lora_pairs(state, path, "state_dict_unet", list(UNET_ADAPTERS), rank)
    for adapter, list_key in UNET_ADAPTERS.items():
        check_targets(pairs, adapter, ckpt[list_key], path, "state_dict_unet")
    conv_in = {k: state[k] for k in ("conv_in.base_layer.weight", "conv_in.base_layer.bias") if k in state}
    if not conv_in:  # a plain (not LoRA-wrapped) conv_in, as a checkpoint without a conv_in target holds it
        conv_in = {k: state[k] for k in ("conv_in.weight", "conv_in.bias") if k in state}
    if len(conv_in) != 2:
        raise BadInput(f"{path}: state_dict_unet lacks conv_in's trained weights "
                       "(conv_in.base_layer.weight and .bias)")

    out_unet = {}
    for (module, adapter), p in pairs.items():
        out_unet[f"{module}.lora_A.{adapter}.weight"] = p["A"]
        out_unet[f"{module}.lora_B.{adapter}.weight"] = p["B"]
    for k, t in conv_in.items():
        out_unet[k.replace(".base_layer", "")] = t
    used = {f"{m}.lora_{ab}.{a}.weight" for (m, a) in pairs for ab in "AB"} | set(conv_in)
    ignored = sorted(set(state) - used)
    if ignored:
        print(f"convert_osediff: warning: {len(ignored)} state_dict_unet entries not converted, e.g. {ignored[0]}",
              file=sys.stderr)

    stem = os.path.splitext(os.path.basename(path))[0]
    os.makedirs(args.output_dir, exist_ok=True)
    meta = {"format": "pt", "lora_alpha": repr(float(args.lora_alpha)), "rank": rank, "source": os.path.basename(path),
            "converter": "rass scripts/convert_osediff.py"}
    unet_file = os.path.join(args.output_dir, f"{stem}.unet.safetensors")
    written = [(unet_file, out_unet, dict(meta, adapters=",".join(UNET_ADAPTERS)))]

    has_vae = any(k in ckpt for k in ("state_dict_vae", "vae_lora_encoder_modules", "rank_vae"))
    if has_vae and not args.unet_only:
        require(ckpt, ["rank_vae", "vae_lora_encoder_modules", "state_dict_vae"], path)
        rank_vae = int(ckpt["rank_vae"])
        vpairs = lora_pairs(ckpt["state_dict_vae"], path, "state_dict_vae", ["default_encoder"], rank_vae)
        if vpairs:
            check_targets(vpairs, "default_encoder", ckpt["vae_lora_encoder_modules"], path, "state_dict_vae")
            out_vae = {}
            for (module, adapter), p in vpairs.items():
                out_vae[f"{module}.lora_A.{adapter}.weight"] = p["A"]
                out_vae[f"{module}.lora_B.{adapter}.weight"] = p["B"]
            vae_file = os.path.join(args.output_dir, f"{stem}.vae.safetensors")
            written.append((vae_file, out_vae, dict(meta, rank=rank_vae, adapters="default_encoder")))

    for f, _, _ in written:  # refuse before writing anything
        if os.path.exists(f) and not args.force:
            raise FileExistsError(f"{f} exists (use --force to replace it)")
    for f, tensors, m in written:
        write_safetensors(f, tensors, m, args.force)
        n_lora = sum(1 for k in tensors if ".lora_A." in k)
        print(f"convert_osediff: wrote {f}: {n_lora} LoRA layers, rank {m['rank']}, lora_alpha {args.lora_alpha:g} "
              f"(scale {args.lora_alpha / float(m['rank']):g})", file=sys.stderr)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("pkl", help="osediff.pkl or scr.pkl")
    ap.add_argument("--output-dir", default=".", help="folder for the .safetensors files (default: .)")
    ap.add_argument("--unet-only", action="store_true", help="skip the VAE encoder LoRA")
    ap.add_argument("--lora-alpha", type=float, default=PEFT_DEFAULT_ALPHA,
                    help="alpha the checkpoint was trained with (default 8, PEFT's default, which OSEDiff uses)")
    ap.add_argument("--force", action="store_true", help="replace existing outputs")
    args = ap.parse_args()
    if not (args.lora_alpha > 0 and args.lora_alpha != float("inf")):
        ap.error("--lora-alpha must be a finite positive number")
    try:
        convert(args)
    except BadInput as e:
        print(f"convert_osediff: {e}", file=sys.stderr)
        sys.exit(3)
    except FileExistsError as e:
        print(f"convert_osediff: {e}", file=sys.stderr)
        sys.exit(2)
    except OSError as e:
        print(f"convert_osediff: {e}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
