#!/usr/bin/env python3
"""Convert DreamClear's released checkpoints into a model folder that
rass-dreamclear loads.

    python3 scripts/convert_dreamclear.py DreamClear-1024.pth --swinir general_swinir_v1.ckpt \\
        --vae sd-vae-ft-ema -o dreamclear

Needs only torch. DreamClear-1024.pth is the state dict of
ControlPixArtMSHalfSR2Branch (base_model.*, controlnet_lq.*, controlnet_pre.*,
am_lq.*, am_pre.*, cross_de.*, c_embedder_*, x_embedder_*), possibly inside
{"state_dict": ...}; general_swinir_v1.ckpt is DiffBIR's SwinIR
({"state_dict": ...} with DDP's "module." prefix); sd-vae-ft-ema is a
diffusers AutoencoderKL folder. The network sizes are read from the tensors'
shapes (hidden size, depth, ControlFormer copies, experts, caption width and
length, SwinIR's width, depths, heads and window); what shapes cannot tell
(the DiT's heads, lewei_scale, the training image size, SwinIR's img_size)
takes the released values, base_size follows the image size (image_size / 8
/ patch, as PixArt's input_size // patch_size) (DreamClear_Test.py, test.py), which
--config changes: a JSON object of dreamclear.json's fields, e.g.
'{"dit": {"num_heads": 4}, "image_size": 512}'.

Dropped, as DreamClear's own loader drops or never uses them:
base_model.pos_embed (positions are computed for each size) and SwinIR's
relative_position_index and attn_mask buffers (derived from the window).

Written (a temporary folder beside -o, renamed at the end):
  dit.safetensors, swinir.safetensors   names unchanged, dtype kept
  vae/              config.json and the weights (a .bin is rewritten as
                    diffusion_pytorch_model.safetensors)
  dreamclear.json   {"format": "rass-dreamclear", "version": 1, ...}

Exit codes: 0 done; 2 usage (an existing -o, a bad --config); 3 bad input (not
such a checkpoint); 1 I/O failures.
"""
import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from convert_rass import (BadInput, json_object_arg, link_or_copy, run_converter, staged_folder,  # noqa: E402
                          write_safetensors)
from convert_sam import load_state  # noqa: E402

import torch  # noqa: E402

RELEASED = {
    "format": "rass-dreamclear", "version": 1, "image_size": 1024, "scale_factor": 0.18215,
    "diffusion": {"train_steps": 1000, "beta_schedule": "linear"},
    "dit": {"hidden_size": 1152, "depth": 28, "num_heads": 16, "patch_size": 2, "in_channels": 4, "learn_sigma": True,
            "mlp_ratio": 4.0, "caption_channels": 4096, "model_max_length": 120, "lewei_scale": 2.0,
            "copy_blocks_num": 28, "num_experts": 3},
    "swinir": {"in_chans": 3, "embed_dim": 180, "depths": [6] * 8, "num_heads": [6] * 8, "window_size": 8,
               "mlp_ratio": 2.0, "img_size": 64, "sf": 8, "unshuffle_scale": 8, "upsampler": "nearest+conv",
               "resi_connection": "1conv", "img_range": 1.0},
}


def count(sd, prefix):
    """How many consecutive children prefix.0, prefix.1, ... the keys hold."""
    n = 0
    while any(k.startswith(f"{prefix}.{n}.") for k in sd):
        n += 1
    return n


def need(sd, path, keys, what):
    for k in keys:
        if k not in sd:
            tops = sorted({x.split(".")[0] for x in sd})[:8]
            raise BadInput(f"{path}: not {what}: no {k} (its keys start with {', '.join(tops)})")


def dit_state(path, trust):
    sd = load_state(path, trust)
    sd.pop("base_model.pos_embed", None)
    need(sd, path, ("base_model.x_embedder.proj.weight", "base_model.blocks.0.attn.qkv.weight",
                    "base_model.y_embedder.y_embedding", "controlnet_lq.0.copied_block.attn.qkv.weight",
                    "cross_de.0.de_proj.weight", "am_lq.0.gate.0.weight", "c_embedder_lq.proj.weight"),
         "DreamClear's ControlPixArtMSHalfSR2Branch")
    return sd


def dit_shapes(sd, path):
    w = sd["base_model.x_embedder.proj.weight"]
    if w.dim() != 4 or w.shape[2] != w.shape[3]:
        raise BadInput(f"{path}: base_model.x_embedder.proj.weight is {list(w.shape)}: not a square patch embedding")
    hidden = int(w.shape[0])
    y = sd["base_model.y_embedder.y_embedding"]
    fc1 = sd["base_model.blocks.0.mlp.fc1.weight"]
    return {"hidden_size": hidden, "patch_size": int(w.shape[2]), "in_channels": int(w.shape[1]),
            "depth": count(sd, "base_model.blocks"), "copy_blocks_num": count(sd, "controlnet_lq"),
            "num_experts": count(sd, "am_lq.0.experts"), "caption_channels": int(y.shape[1]),
            "model_max_length": int(y.shape[0]), "mlp_ratio": float(fc1.shape[0]) / hidden}


def swinir_state(path, trust):
    sd = load_state(path, trust)
    sd = {k: v for k, v in sd.items() if not k.endswith((".relative_position_index", ".attn_mask"))}
    need(sd, path, ("conv_first.1.weight", "layers.0.residual_group.blocks.0.attn.qkv.weight", "conv_up1.weight",
                    "conv_last.weight"), "DiffBIR's SwinIR (pixel-unshuffle, nearest+conv)")
    return sd


def swinir_shapes(sd):
    E = int(sd["conv_first.1.weight"].shape[0])
    layers = count(sd, "layers")
    depths = [count(sd, f"layers.{i}.residual_group.blocks") for i in range(layers)]
    heads = [int(sd[f"layers.{i}.residual_group.blocks.0.attn.relative_position_bias_table"].shape[1])
             for i in range(layers)]
    table = int(sd["layers.0.residual_group.blocks.0.attn.relative_position_bias_table"].shape[0])
    window = (int(round(table ** 0.5)) + 1) // 2
    fc1 = sd["layers.0.residual_group.blocks.0.mlp.fc1.weight"]
    return {"embed_dim": E, "depths": depths, "num_heads": heads, "window_size": window,
            "mlp_ratio": float(fc1.shape[0]) / E}


def merge(base, over):
    out = dict(base)
    for k, v in over.items():
        out[k] = merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def check_config(text):
    """--config: a JSON object of dreamclear.json's fields (ValueError: a usage error)."""
    cfg = json_object_arg(text, "--config")
    for k, v in cfg.items():
        if k not in RELEASED or k in ("format", "version"):
            raise ValueError(f"--config: {k} is not a field of dreamclear.json "
                             "(image_size, scale_factor, diffusion, dit, swinir)")
        if isinstance(RELEASED[k], dict):
            if not isinstance(v, dict):
                raise ValueError(f"--config: {k} must be an object")
            for kk in v:
                if kk not in RELEASED[k] and not (k == "dit" and kk == "base_size"):
                    raise ValueError(f"--config: {k}.{kk} is not a field of dreamclear.json's {k}")
    return cfg


def vae_files(folder):
    if not os.path.isfile(os.path.join(folder, "config.json")):
        raise BadInput(f"{folder}: not a diffusers AutoencoderKL folder (no config.json)")
    with open(os.path.join(folder, "config.json")) as f:
        try:
            cfg = json.load(f)
        except ValueError as e:
            raise BadInput(f"{folder}/config.json: not JSON ({e})")
    if not isinstance(cfg, dict) or cfg.get("_class_name") != "AutoencoderKL":
        raise BadInput(f"{folder}/config.json: not an AutoencoderKL config")
    for name in ("diffusion_pytorch_model.safetensors", "diffusion_pytorch_model.bin"):
        if os.path.isfile(os.path.join(folder, name)):
            return name
    raise BadInput(f"{folder}: has no diffusion_pytorch_model.safetensors or .bin")


def convert(args):
    if os.path.lexists(args.output):
        raise FileExistsError(f"{args.output} exists; choose a new folder")
    vae_name = vae_files(args.vae)
    dit = dit_state(args.checkpoint, args.trust_checkpoint)
    swin = swinir_state(args.swinir, args.trust_checkpoint)
    config = merge(RELEASED, {"dit": dit_shapes(dit, args.checkpoint), "swinir": swinir_shapes(swin)})
    config = merge(config, args.config or {})
    # PixArt's base_size is input_size // patch_size of the training size
    # (image_size / 8 latent pixels): 64 for the 1024-pixel model.
    if "base_size" not in config["dit"]:
        config["dit"]["base_size"] = int(config["image_size"]) // 8 // int(config["dit"]["patch_size"])
    with staged_folder(args.output) as tmp:
        note = "converted by scripts/convert_dreamclear.py from "
        write_safetensors(os.path.join(tmp, "dit.safetensors"), dit,
                          {"format": "pt", "rass": note + os.path.basename(args.checkpoint)})
        write_safetensors(os.path.join(tmp, "swinir.safetensors"), swin,
                          {"format": "pt", "rass": note + os.path.basename(args.swinir)})
        os.mkdir(os.path.join(tmp, "vae"))
        link_or_copy(os.path.join(args.vae, "config.json"), os.path.join(tmp, "vae", "config.json"))
        if vae_name.endswith(".safetensors"):
            link_or_copy(os.path.join(args.vae, vae_name), os.path.join(tmp, "vae", vae_name))
        else:
            vae = load_state(os.path.join(args.vae, vae_name), args.trust_checkpoint)
            write_safetensors(os.path.join(tmp, "vae", "diffusion_pytorch_model.safetensors"), vae,
                              {"format": "pt", "rass": note + vae_name})
        with open(os.path.join(tmp, "dreamclear.json"), "w") as f:
            json.dump(config, f, indent=1)
            f.write("\n")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("checkpoint", help="DreamClear-1024.pth (ControlPixArtMSHalfSR2Branch's state dict)")
    ap.add_argument("--swinir", required=True, help="general_swinir_v1.ckpt (DiffBIR's SwinIR)")
    ap.add_argument("--vae", required=True, help="sd-vae-ft-ema (a diffusers AutoencoderKL folder)")
    ap.add_argument("-o", "--output", required=True, help="the model folder to create")
    ap.add_argument("--config", help="JSON object of dreamclear.json fields for another network")
    ap.add_argument("--trust-checkpoint", action="store_true",
                    help="unpickle the checkpoints in full (runs code from the files)")
    args = ap.parse_args()
    if args.config:
        try:
            args.config = check_config(args.config)
        except ValueError as e:
            print(f"convert_dreamclear: {e}", file=sys.stderr)
            sys.exit(2)
    run_converter("convert_dreamclear", convert, args)


if __name__ == "__main__":
    main()
