#!/usr/bin/env python3
"""Convert a SAMSR, SinSR or ResShift x4 checkpoint and the VQ-f4 autoencoder
into a model folder that rass-samsr loads.

    python3 scripts/convert_samsr.py SamSR_v1.pth --autoencoder autoencoder_vq_f4.pth \\
        --sam sam-vit-b -o samsr
    python3 scripts/convert_samsr.py SinSR_v1.pth --autoencoder autoencoder_vq_f4.pth --method sinsr -o sinsr
    python3 scripts/convert_samsr.py resshift_realsrx4_s15_v1.pth --autoencoder autoencoder_vq_f4.pth \\
        --method resshift -o resshift
    # No network checkpoint: the autoencoder and schedule alone, the start of
    # rass-train resshift --set resshift.init=random (ResShift from scratch):
    python3 scripts/convert_samsr.py --autoencoder autoencoder_vq_f4.pth --method resshift -o resshift-start
    # ResShift v3 (configs/realsr_swinunet_realesrgan256_journal.yaml: 4 steps, min_noise_level 0.2):
    python3 scripts/convert_samsr.py resshift_realsrx4_s4_v3.pth --autoencoder autoencoder_vq_f4.pth \\
        --method resshift --config '{"diffusion": {"steps": 4, "min_noise_level": 0.2}}' -o resshift-v3

Needs only torch. Each checkpoint is a state dict (or a dict with
"state_dict" or "model"); a "module." prefix (DDP) is removed. The UNet is
UNetModelSwin as configs/SamSR.yaml builds it (SinSR's and ResShift v1's
realsr configs are the same network); --config gives samsr.json fields for
another (a JSON object with "unet", "autoencoder", "diffusion" and "sam" objects).
The Swin blocks' relative_position_index and attn_mask buffers are dropped:
they are derived from the window, and rass-samsr computes them for each
input's size. The autoencoder's loss.* tensors (a training checkpoint's
discriminator and LPIPS) are dropped.

Written (a temporary folder beside -o, renamed at the end):
  unet.safetensors, autoencoder.safetensors   names unchanged, dtype kept
                    (no unet.safetensors without a network checkpoint)
  samsr.json        {"architecture": "resshift", "method": ...} and --config's fields
  sam/              --sam's folder (rass-sam's; linked, copied across
                    filesystems): SAMSR's masks come from it

Exit codes: 0 done; 2 usage (an existing -o, a bad --config); 3 bad input (not
such a checkpoint); 1 I/O failures.
"""
import argparse
import json
import os
import shutil
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from convert_rass import (BadInput, json_object_arg, link_or_copy, run_converter, staged_folder,  # noqa: E402
                          write_safetensors)
from convert_sam import load_state  # noqa: E402

DERIVED = (".relative_position_index", ".attn_mask")


def unet_state(path, trust):
    sd = load_state(path, trust)
    sd = {k: v for k, v in sd.items() if not k.endswith(DERIVED)}
    for need in ("input_blocks.0.0.weight", "time_embed.0.weight", "out.2.weight"):
        if need not in sd:
            tops = sorted({k.split(".")[0] for k in sd})[:8]
            raise BadInput(f"{path}: not a ResShift UNetModelSwin checkpoint: no {need} (its keys start with "
                           f"{', '.join(tops)})")
    if any(k.startswith("feature_extractor.") for k in sd):
        raise BadInput(f"{path}: has a low-resolution feature extractor (a ResShift config whose lq_size differs from "
                       "the latent's); rass-samsr runs the models that concatenate the image itself (SAMSR, SinSR, "
                       "ResShift's x4 v1 and v3)")
    return sd


def autoencoder_state(path, trust):
    sd = load_state(path, trust)
    sd = {k: v for k, v in sd.items() if not k.startswith("loss.")}
    for need in ("encoder.conv_in.weight", "decoder.conv_out.weight", "quantize.embedding.weight", "quant_conv.weight"):
        if need not in sd:
            raise BadInput(f"{path}: not the VQ autoencoder (VQModelTorch): no {need}")
    return sd


def check_config(text):
    """--config: a JSON object of samsr.json's sections (ValueError: a usage error)."""
    cfg = json_object_arg(text, "--config")
    for k, v in cfg.items():
        if k not in ("unet", "autoencoder", "diffusion", "sam"):
            raise ValueError(f"--config: {k} is not a section of samsr.json (unet, autoencoder, diffusion, sam)")
        if not isinstance(v, dict):
            raise ValueError(f"--config: {k} must be an object")
    return cfg


def convert(args):
    if os.path.lexists(args.output):
        raise FileExistsError(f"{args.output} exists; choose a new folder")
    if args.sam and not os.path.isfile(os.path.join(args.sam, "sam.json")):
        raise BadInput(f"{args.sam}: not a SAM model folder (no sam.json; scripts/convert_sam.py makes one)")
    unet = unet_state(args.checkpoint, args.trust_checkpoint) if args.checkpoint else None
    ae = autoencoder_state(args.autoencoder, args.trust_checkpoint)
    w = unet["input_blocks.0.0.weight"] if unet else None
    if unet and (w.dim() != 4 or w.shape[1] != 6):
        raise BadInput(f"{args.checkpoint}: input_blocks.0.0.weight is {list(w.shape)}: the network must take the "
                       "latent and the image (6 channels)")
    config = {"architecture": "resshift", "method": args.method}
    config.update(args.config or {})
    with staged_folder(args.output) as tmp:
        note = "converted by scripts/convert_samsr.py from "
        if unet:
            write_safetensors(os.path.join(tmp, "unet.safetensors"), unet,
                              {"format": "pt", "rass": note + os.path.basename(args.checkpoint)})
        write_safetensors(os.path.join(tmp, "autoencoder.safetensors"), ae,
                          {"format": "pt", "rass": note + os.path.basename(args.autoencoder)})
        with open(os.path.join(tmp, "samsr.json"), "w") as f:
            json.dump(config, f, indent=1)
            f.write("\n")
        if args.sam:
            shutil.copytree(args.sam, os.path.join(tmp, "sam"), copy_function=link_or_copy)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("checkpoint", nargs="?",
                    help="SamSR_v1.pth, SinSR_v1.pth or resshift_realsrx4_s15_v1.pth (a UNetModelSwin state dict); "
                    "left out: a folder without a network, the start of rass-train resshift with resshift.init random")
    ap.add_argument("--autoencoder", required=True, help="autoencoder_vq_f4.pth (VQModelTorch)")
    ap.add_argument("-o", "--output", required=True, help="the model folder to create")
    ap.add_argument("--method", choices=("samsr", "sinsr", "resshift"), default="samsr",
                    help="samsr: SAM noise, one step; sinsr: Gaussian noise, one step; resshift: the full chain")
    ap.add_argument("--sam", help="a SAM ViT-B folder (scripts/convert_sam.py) for SAMSR's masks, linked as sam/")
    ap.add_argument("--config", help="JSON object of samsr.json sections (unet, autoencoder, diffusion, sam) for another network")
    ap.add_argument("--trust-checkpoint", action="store_true",
                    help="unpickle the checkpoints in full (runs code from the files)")
    args = ap.parse_args()
    if not args.output:
        ap.error("-o names the folder to create")
    if args.config:
        try:
            args.config = check_config(args.config)
        except ValueError as e:
            print(f"convert_samsr: {e}", file=sys.stderr)
            sys.exit(2)
    run_converter("convert_samsr", convert, args)


if __name__ == "__main__":
    main()
