#!/usr/bin/env python3
"""Convert a Segment Anything v1 checkpoint (sam_vit_{b,l,h}_*.pth, or
GleSAM's, whose mask decoder is fine-tuned) into a SAM model folder that
rass-sam loads.

    python3 scripts/convert_sam.py sam_vit_l_0b3195.pth -o sam-vit-l
    # GleSAM: its decoder, and its enhancer UNet (SD's UNet with conv_in /
    # conv_out replicated x64 and GleSAM's LoRA merged, made by
    # rass-merge-lora expand-channels 64 and rass-merge-lora merge):
    python3 scripts/convert_sam.py sam_vit_l_0b3195.pth --decoder glesam_decoder.pth \
        --enhancer-unet glesam-unet --sd stable-diffusion-2-1-base --feat-weight 5 -o glesam-vit-l
    # RobustSAM (robustsam_checkpoint_{b,l,h}.pth) and HQ-SAM
    # (sam_hq_vit_{b,l,h}.pth): SAM plus their decoder additions, found by
    # their keys:
    python3 scripts/convert_sam.py robustsam_checkpoint_l.pth -o robustsam-vit-l
    python3 scripts/convert_sam.py sam_hq_vit_l.pth -o sam-hq-vit-l
    # SAM 2 and SAM 2.1 (sam2_hiera_*.pt, sam2.1_hiera_*.pt): the image
    # encoder, prompt encoder, mask decoder and no_mem_embed are kept, the
    # video memory modules dropped:
    python3 scripts/convert_sam.py sam2.1_hiera_large.pt -o sam2.1-hiera-l

Needs only torch. The checkpoint is a state dict (or a dict with "model")
whose keys are SAM's own (image_encoder.*, prompt_encoder.*, mask_decoder.*;
a "module." prefix, as DDP saves it, is removed). --decoder replaces the
mask_decoder.* tensors with another file's (keys with or without the
"mask_decoder." prefix). The variant (vit_b, vit_l, vit_h) is read from the
encoder's width and depth; SAM 2's (hiera_t, hiera_s, hiera_b+, hiera_l)
from its trunk's width and block count.

Written (a temporary folder beside -o, renamed at the end):
  sam.safetensors   every tensor, names unchanged, dtype kept (but
                    BatchNorm's num_batches_tracked, which inference never reads)
  sam.json          architecture "sam" (or "sam2"), the variant, "robust": true for
                    RobustSAM, "hq": true for HQ-SAM, and with --enhancer-unet
                    "enhancer": {"feat_weight", "timestep": 1, "prompt": ""}
  unet/             --enhancer-unet's files (linked, copied across filesystems)
  text_encoder/ tokenizer/ scheduler/   --sd's (linked)

Exit codes: 0 done; 2 usage (an existing -o); 3 bad input (not a SAM
checkpoint, a decoder that does not fit); 1 I/O failures.
"""
import argparse
import json
import math
import os
import shutil
import stat
import sys

import torch

# The safetensors writer, the bad-input error, the staged output folder and
# the exit codes of the RASS converter, shared.
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from convert_rass import (BadInput, json_object_arg, link_or_copy, run_converter, staged_folder,  # noqa: E402
                          write_safetensors)

VARIANTS = {(768, 12): "vit_b", (1024, 24): "vit_l", (1280, 32): "vit_h"}
# The sam.json fields --config may give, with their JSON types (rass-sam
# checks values; these are checked here so a bad --config writes no folder).
SIZE_FIELDS = {k: int for k in ("image_size", "patch_size", "embed_dim", "depth", "num_heads", "window_size",
                                "prompt_embed_dim", "mask_in_chans", "decoder_depth", "decoder_heads",
                                "decoder_mlp_dim", "attention_downsample_rate", "num_multimask_outputs",
                                "iou_head_depth", "iou_head_hidden_dim")}
SIZE_FIELDS.update(mlp_ratio=float, use_rel_pos=bool, global_attn_indexes=list)
# SAM 2: the Hiera trunk's (width, blocks) per variant, and its size fields.
SAM2_VARIANTS = {(96, 12): "hiera_t", (96, 16): "hiera_s", (112, 24): "hiera_b+", (144, 48): "hiera_l"}
# The variants' sizes that --config may change and the checks below need
# (sam2_preset in lib/rass/nn/sam2.cpp; configs/sam2.1/*.yaml).
SAM2_PRESETS = {
    "hiera_t": dict(embed_dim=96, num_heads=1, stages=[1, 2, 7, 2], window_spec=[8, 4, 14, 7]),
    "hiera_s": dict(embed_dim=96, num_heads=1, stages=[1, 2, 11, 2], window_spec=[8, 4, 14, 7]),
    "hiera_b+": dict(embed_dim=112, num_heads=2, stages=[2, 3, 16, 3], window_spec=[8, 4, 14, 7]),
    "hiera_l": dict(embed_dim=144, num_heads=2, stages=[2, 6, 36, 4], window_spec=[8, 4, 16, 8]),
}
SAM2_SIZE_FIELDS = {k: int for k in ("image_size", "embed_dim", "num_heads", "prompt_embed_dim")}
SAM2_SIZE_FIELDS.update(stages=list, global_att_blocks=list, window_spec=list, window_pos_embed_bkg_spatial_size=list)
# What SAM2ImagePredictor runs; the rest (memory attention and encoder,
# object pointers, temporal encodings) serves video tracking only.
SAM2_KEPT = ("image_encoder.", "sam_prompt_encoder.", "sam_mask_decoder.", "no_mem_embed")


def load_state(path, trust):
    # A .pth is a pickle: weights_only admits tensors and plain containers.
    try:
        st = os.stat(path)
    except OSError as e:
        raise BadInput(f"{path}: {e.strerror}")
    if not stat.S_ISREG(st.st_mode):
        raise BadInput(f"{path}: not a regular file")
    # torch.save writes a zip archive (or, before 1.6, a pickle): anything else
    # is no checkpoint (torch's weights-only error would suggest trusting it).
    with open(path, "rb") as f:
        head = f.read(4)
    if head != b"PK\x03\x04" and not head.startswith(b"\x80"):
        raise BadInput(f"{path}: not a torch checkpoint (neither the zip archive nor the pickle torch.save writes)")
    try:
        ck = torch.load(path, map_location="cpu", weights_only=not trust)
    except TypeError:  # torch < 1.13 has no weights_only
        ck = torch.load(path, map_location="cpu")
    except Exception as e:
        if not trust and "Weights only load failed" in str(e):
            raise BadInput(f"{path}: holds pickled Python objects besides tensors; loading it runs code from the "
                           "file: pass --trust-checkpoint only if you trust its source")
        raise BadInput(f"{path}: not a torch checkpoint ({type(e).__name__}: {e})")
    for wrapper in ("model", "state_dict"):  # {"model": ...} (SAM's trainers), {"state_dict": ...} (ResShift's)
        if isinstance(ck, dict) and isinstance(ck.get(wrapper), dict):
            ck = ck[wrapper]
    if not isinstance(ck, dict) or not ck:
        raise BadInput(f"{path}: not a state dict")
    out = {}
    for k, v in ck.items():
        if not isinstance(k, str):
            raise BadInput(f"{path}: not a state dict (a key {k!r} is no tensor name)")
        if not torch.is_tensor(v):
            raise BadInput(f"{path}: entry {k} is not a tensor")
        out[k[len("module."):] if k.startswith("module.") else k] = v
    return out


def check_config(text, fields=None):
    """--config: a JSON object of `fields` (SIZE_FIELDS, or SAM2_SIZE_FIELDS for
    a SAM 2 checkpoint) with their types (ValueError: a usage error)."""
    fields = fields or SIZE_FIELDS
    cfg = json_object_arg(text, "--config")
    for k, v in cfg.items():
        want = fields.get(k)
        if want is None:
            raise ValueError(f"--config: {k} is not a size field of sam.json ({', '.join(sorted(fields))})")
        ok = (isinstance(v, bool) if want is bool else
              isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and v > 0 if want is float else
              isinstance(v, list) and all(isinstance(i, int) and not isinstance(i, bool) and i >= 0 for i in v)
              if want is list else isinstance(v, int) and not isinstance(v, bool) and v > 0)
        if not ok:
            raise ValueError(f"--config: {k} = {json.dumps(v)} is not a positive "
                             f"{'list of block indexes' if want is list else want.__name__}")
    return cfg


def convert(args):
    if os.path.lexists(args.output):
        raise FileExistsError(f"{args.output} exists; choose a new folder")
    if args.enhancer_unet and not os.path.isfile(os.path.join(args.enhancer_unet, "config.json")):
        raise BadInput(f"{args.enhancer_unet}: not a UNet folder (no config.json)")
    if args.enhancer_unet:
        for comp in ("text_encoder", "tokenizer", "scheduler"):
            if not os.path.isdir(os.path.join(args.sd, comp)):
                raise BadInput(f"{args.sd}: has no {comp}/")
    sd = load_state(args.checkpoint, args.trust_checkpoint)
    if any(k.startswith("image_encoder.trunk.") for k in sd):
        return convert_sam2(args, sd)
    if args.config_text:
        try:
            args.config = check_config(args.config_text)
        except ValueError as e:
            raise UsageError(str(e))
    for part in ("image_encoder.", "prompt_encoder.", "mask_decoder."):
        if not any(k.startswith(part) for k in sd):
            tops = sorted({k.split(".")[0] for k in sd})[:8]
            raise BadInput(f"{args.checkpoint}: not a SAM checkpoint: no {part}* tensors (its keys start with "
                           f"{', '.join(tops)})")
    if args.decoder:
        dec = load_state(args.decoder, args.trust_checkpoint)
        dec = {k if k.startswith("mask_decoder.") else "mask_decoder." + k: v for k, v in dec.items()}
        for k, v in dec.items():
            if k not in sd:
                raise BadInput(f"{args.decoder}: {k} is not a tensor of SAM's mask decoder")
            if tuple(v.shape) != tuple(sd[k].shape):
                raise BadInput(f"{args.decoder}: {k} has shape {list(v.shape)}, SAM's {list(sd[k].shape)}")
            sd[k] = v
    robust = any(k.startswith("mask_decoder.custom_robust_token") for k in sd)
    hq = any(k.startswith("mask_decoder.hf_token") for k in sd)
    if robust and hq:
        raise BadInput(f"{args.checkpoint}: holds both RobustSAM's and HQ-SAM's decoder additions")
    if (robust or hq) and args.enhancer_unet:
        raise BadInput(f"{args.checkpoint}: a {'RobustSAM' if robust else 'HQ-SAM'} checkpoint; GleSAM's enhancer "
                       "(--enhancer-unet) does not combine with it")
    sd = {k: v for k, v in sd.items() if not k.endswith(".num_batches_tracked")}
    width = sd["image_encoder.pos_embed"].shape[-1] if "image_encoder.pos_embed" in sd else 0
    depth = len({k.split(".")[2] for k in sd if k.startswith("image_encoder.blocks.")})
    config = {"architecture": "sam"}
    if (width, depth) in VARIANTS:
        config["variant"] = VARIANTS[(width, depth)]
    elif not args.config:
        raise BadInput(f"{args.checkpoint}: an encoder of width {width} and depth {depth} is none of SAM's "
                       "variants; give its fields with --config")
    else:
        missing = sorted(set(SIZE_FIELDS) - set(args.config))
        if missing:
            raise UsageError(f"--config: {args.checkpoint} is none of SAM's variants, so every size field is "
                             f"needed: missing {', '.join(missing)}")
    if robust:
        config["robust"] = True
    if hq:
        config["hq"] = True
    config.update(args.config or {})
    if args.enhancer_unet:
        config["enhancer"] = {"feat_weight": args.feat_weight, "timestep": 1, "prompt": ""}
    with staged_folder(args.output) as tmp:
        write_safetensors(os.path.join(tmp, "sam.safetensors"), sd,
                          {"format": "pt", "rass": "converted by scripts/convert_sam.py from " +
                           os.path.basename(args.checkpoint) +
                           (" with the decoder of " + os.path.basename(args.decoder) if args.decoder else "")})
        with open(os.path.join(tmp, "sam.json"), "w") as f:
            json.dump(config, f, indent=1)
            f.write("\n")
        if args.enhancer_unet:
            # Hard links (copies across filesystems), as convert_rass.py links SD's folders.
            shutil.copytree(args.enhancer_unet, os.path.join(tmp, "unet"), copy_function=link_or_copy)
            for comp in ("text_encoder", "tokenizer", "scheduler"):
                shutil.copytree(os.path.join(args.sd, comp), os.path.join(tmp, comp), copy_function=link_or_copy)


class UsageError(Exception):
    """A --config that does not fit the checkpoint's kind (exit 2, no folder)."""


def check_sam2_config(cfg, width, blocks, variant=None):
    """The values rass-sam refuses in a SAM 2 sam.json (its read_sam_config),
    refused here first (UsageError) so no folder is written that it cannot
    load: `cfg` over the `variant`'s preset sizes, or alone (every field)."""
    def fail(what):
        raise UsageError(f"--config: {what}")
    lengths = {"stages": 4, "window_spec": 4, "window_pos_embed_bkg_spatial_size": 2}
    for k, n in lengths.items():
        if k in cfg and (len(cfg[k]) != n or min(cfg[k]) < 1 or max(cfg[k]) > 65536):
            fail(f"{k} = {json.dumps(cfg[k])}: SAM 2 has {n} entries, each 1..65536")
    c = dict(SAM2_PRESETS.get(variant, {}), image_size=1024, prompt_embed_dim=256)
    c.update(cfg)
    for k in ("image_size", "embed_dim", "num_heads", "prompt_embed_dim"):
        if c[k] > 65536:
            fail(f"{k} {c[k]} is out of range")
    size, windows = c["image_size"], c["window_spec"]
    if size % 32 or size > 2048 or (size // 4) % windows[0]:
        fail(f"image_size {size}: a multiple of 32, at most 2048, whose quarter the first window ({windows[0]}) "
             "divides")
    if sum(c["stages"]) != blocks:
        fail(f"stages {json.dumps(c['stages'])} make {sum(c['stages'])} blocks; the checkpoint has {blocks}")
    if c["embed_dim"] != width:
        fail(f"embed_dim {c['embed_dim']}; the checkpoint's trunk is {width} wide")
    for i in c.get("global_att_blocks", []):
        if i >= blocks:
            fail(f"global_att_blocks names block {i} of {blocks}")
    for k, w in enumerate(windows):
        if w > (size // 4) >> k:
            fail(f"window_spec[{k}] = {w} is wider than stage {k + 1}'s {(size // 4) >> k}-pixel map")
    width, heads = c["embed_dim"], c["num_heads"]
    for k in range(4):  # each stage doubles the width and the heads (int(x * 2.0))
        if width % heads:
            fail(f"stage {k + 1}'s width {width} is not a multiple of its {heads} heads")
        width, heads = width * 2, heads * 2
    if c["prompt_embed_dim"] % 16:
        fail(f"prompt_embed_dim {c['prompt_embed_dim']} is not a multiple of 16 (8 decoder heads at half width)")


def convert_sam2(args, sd):
    """SAM 2 / 2.1: the image predictor's tensors, sam.json with the variant."""
    if args.decoder or args.enhancer_unet:
        raise UsageError(f"{args.checkpoint}: a SAM 2 checkpoint; --decoder and --enhancer-unet are GleSAM's "
                         "SAM v1 parts (its released code has no SAM 2 path)")
    cfg = {}
    if args.config_text:
        try:
            cfg = check_config(args.config_text, SAM2_SIZE_FIELDS)
        except ValueError as e:
            raise UsageError(str(e))
    for part in ("image_encoder.trunk.", "image_encoder.neck.", "sam_prompt_encoder.", "sam_mask_decoder.",
                 "no_mem_embed"):
        if not any(k.startswith(part) for k in sd):
            raise BadInput(f"{args.checkpoint}: not a SAM 2 checkpoint: it has image_encoder.trunk.* but no "
                           f"{part}* tensors")
    sd = {k: v for k, v in sd.items() if k.startswith(SAM2_KEPT) and not k.endswith(".num_batches_tracked")}
    width = sd["image_encoder.trunk.pos_embed"].shape[1] if "image_encoder.trunk.pos_embed" in sd else 0
    blocks = len({k.split(".")[3] for k in sd if k.startswith("image_encoder.trunk.blocks.")})
    config = {"architecture": "sam2"}
    if (width, blocks) in SAM2_VARIANTS:
        config["variant"] = SAM2_VARIANTS[(width, blocks)]
    elif not cfg:
        raise BadInput(f"{args.checkpoint}: a Hiera trunk of width {width} and {blocks} blocks is none of SAM 2's "
                       "variants; give its fields with --config")
    if "variant" not in config:
        missing = sorted(set(SAM2_SIZE_FIELDS) - set(cfg))
        if missing:
            raise UsageError(f"--config: {args.checkpoint} is none of SAM 2's variants, so every size field is "
                             f"needed: missing {', '.join(missing)}")
    check_sam2_config(cfg, width, blocks, config.get("variant"))
    config.update(cfg)
    with staged_folder(args.output) as tmp:
        write_safetensors(os.path.join(tmp, "sam.safetensors"), sd,
                          {"format": "pt", "rass": "converted by scripts/convert_sam.py from " +
                           os.path.basename(args.checkpoint) + " (image predictor's tensors)"})
        with open(os.path.join(tmp, "sam.json"), "w") as f:
            json.dump(config, f, indent=1)
            f.write("\n")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("checkpoint", help="sam_vit_{b,l,h}_*.pth (a SAM v1 state dict), RobustSAM's or HQ-SAM's checkpoint, or SAM 2's")
    ap.add_argument("-o", "--output", required=True, help="the model folder to create")
    ap.add_argument("--decoder", help="a fine-tuned mask decoder's state dict (GleSAM's) replacing SAM's")
    ap.add_argument("--enhancer-unet", help="GleSAM's enhancer UNet folder (diffusers layout, 256 channels in and out)")
    ap.add_argument("--sd", help="the Stable Diffusion folder its text encoder, tokenizer and scheduler come from")
    ap.add_argument("--feat-weight", type=float, default=5.0, help="GleSAM's feature weight g (paper 5, demo 3)")
    ap.add_argument("--config", help="JSON object of sam.json fields (for an encoder that is none of the variants)")
    ap.add_argument("--trust-checkpoint", action="store_true",
                    help="unpickle the checkpoint in full (runs code from the file)")
    args = ap.parse_args()
    if not args.output:
        ap.error("-o names the folder to create")
    if args.enhancer_unet and not args.sd:
        ap.error("--enhancer-unet needs --sd (its text_encoder/, tokenizer/ and scheduler/)")
    if not (math.isfinite(args.feat_weight) and args.feat_weight > 0):
        ap.error("--feat-weight must be a positive number")
    # --config is checked against the checkpoint's kind (SAM or SAM 2) once it
    # is read; its JSON now, before anything is loaded.
    args.config_text, args.config = args.config, None
    if args.config_text:
        try:
            json_object_arg(args.config_text, "--config")
        except ValueError as e:
            ap.error(str(e))

    def checked(a):
        try:
            convert(a)
        except UsageError as e:
            print(f"convert_sam: {e}", file=sys.stderr)
            sys.exit(2)
    run_converter("convert_sam", checked, args)

if __name__ == "__main__":
    main()
