#!/usr/bin/env python3
"""Convert the released RASS stage-2 checkpoint (rass.pth, a detectron2
checkpoint) plus the user's Stable Diffusion 2.1-base folder into a
segmentation model folder that rass-segment loads.

    python3 scripts/convert_rass.py rass.pth --sd stable-diffusion-2-1-base -o rass-ade20k

Needs only torch. rass.pth is torch.save({"model": state_dict, ...}); its keys
(REFERENCE.md section 4):
  backbone.feature_extractor.sd.unet.*          the UNet with the SCR LoRA merged;
      LoRA'd layers as PEFT wraps them: <path>.base_layer.{weight,bias} and
      <path>.lora_{A,B}.default_{encoder,decoder,others}_s2.weight (the Seg LoRA)
  backbone.feature_extractor.sd.{vae,text_encoder}.*
  backbone.feature_extractor.feature_projections.<i>.0.{conv1,conv2,conv3,shortcut}.*
  sem_seg_head.{pixel_decoder,predictor}.*
  dropped: backbone.feature_extractor.{ram,dape}.* (the taggers: fp16, with
  their own loralib lora_A/lora_B keys, never taken as the Seg LoRA),
  backbone.jpeger.* (DiffJPEG's tables), criterion.* (the loss).
The tokenizer is not in rass.pth: it comes from --sd (tokenizer/), as do the
component configs (unet/, vae/, text_encoder/ config.json: RASS builds its
modules from that folder) and, for --backbone plain, the SD UNet itself
(unet_plain/, hard-linked; --no-plain leaves it out).

Written (a temporary folder beside -o, renamed at the end):
  unet/            config.json + diffusion_pytorch_model.safetensors (base_layer
                   weights under the plain names)
  seg_lora.safetensors   the Seg LoRA, PEFT names, adapters kept, metadata
                   lora_alpha (RASS's LoraConfig leaves PEFT's default 8; at
                   rank 4 the scale is 2) and rank. Kept as a LoRA (not merged)
                   so the same adapter can run on unet_plain/ and training can
                   continue it; rass-segment merges it at load.
  vae/, text_encoder/, tokenizer/, scheduler/ (when --sd has one)
  unet_plain/      the SD folder's unet/, linked (copied across filesystems)
  seg_head.safetensors   feature_projections.* and sem_seg_head.*, names as in
                   rass.pth after the container prefix
  segment.json     architecture "rass", the projection (feature_dims read from
                   the weights, strides [4, 8, 32, 16, 8, 8] as released), the
                   head config (sizes read from the weights; heads, points and
                   anything else not visible in shapes from the released
                   config, or --head-config JSON), classes (ade20k), timestep 1,
                   prompt_style rass, the test-time input policy (shortest edge
                   512, max 2048, pad to a multiple of 8)
  rass.json        method scr, timestep 1, prompt_style rass (as restore folders)

Exit codes: 0 done; 2 usage (an existing -o); 3 bad input (not a RASS
checkpoint -- another architecture, missing parts, shapes that do not fit the
SD configs); 1 I/O failures.
"""
import argparse
import contextlib
import json
import os
import re
import shutil
import signal
import struct
import sys
import tempfile

import torch

PEFT_DEFAULT_ALPHA = 8.0
FE = "backbone.feature_extractor."
LORA_KEY = re.compile(r"^(.*)\.lora_([AB])\.([^.]+)\.weight$")
DTYPES = {torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16", torch.float64: "F64"}
RELEASED_HEAD = dict(num_classes=150, num_queries=100, hidden_dim=256, nheads=8, dim_feedforward=2048, dec_layers=10,
                     pre_norm=False, enforce_input_project=False, mask_dim=256, conv_dim=256, norm_groups=32,
                     common_stride=4, enc_layers=6, enc_dim_feedforward=1024, enc_nheads=8, enc_n_points=4,
                     in_channels=[512, 512, 512, 512], in_strides=[4, 8, 16, 32], deformable_levels=3)


class BadInput(Exception):
    pass


def write_safetensors(path, tensors, metadata):
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
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for b in blobs:
            f.write(b)


def load_checkpoint(path, trust=False):
    # A .pth is a pickle: a full unpickling runs whatever code the file names.
    # weights_only admits tensors and plain containers, all a detectron2
    # checkpoint holds; anything else needs --trust-checkpoint.
    try:
        ck = torch.load(path, map_location="cpu", weights_only=not trust)
    except Exception as e:  # unpickling errors of every kind: not a torch checkpoint
        if not trust and "Weights only load failed" in str(e):
            detail = str(e).split("Unpickler error:")[-1].strip().splitlines()[0]
            raise BadInput(f"{path}: holds pickled Python objects besides tensors ({detail}); loading it runs "
                           "code from the file: pass --trust-checkpoint only if you trust its source")
        raise BadInput(f"{path}: not a torch checkpoint ({type(e).__name__}: {e})")
    if not isinstance(ck, dict) or not isinstance(ck.get("model"), dict):
        raise BadInput(f"{path}: not a detectron2 checkpoint (a dict with a \"model\" state dict)")
    model = ck["model"]
    need = {FE + "sd.unet.": "the UNet", FE + "sd.vae.": "the VAE", FE + "sd.text_encoder.": "the text encoder",
            FE + "feature_projections.": "the feature projections", "sem_seg_head.pixel_decoder.": "the pixel decoder",
            "sem_seg_head.predictor.": "the transformer decoder"}
    missing = [f"{what} ({p}*)" for p, what in need.items() if not any(k.startswith(p) for k in model)]
    if missing:
        tops = sorted({".".join(k.split(".")[:3]) for k in model})[:8]
        raise BadInput(f"{path}: not a RASS stage-2 checkpoint: no " + ", ".join(missing) +
                       f" (its keys start with {', '.join(tops)}{', ...' if len(tops) == 8 else ''})")
    for k, v in model.items():
        if not torch.is_tensor(v):
            raise BadInput(f"{path}: entry {k} is not a tensor")
    return model


def split_unet(model, path):
    base, lora = {}, {}
    p = FE + "sd.unet."
    for k, v in model.items():
        if not k.startswith(p):
            continue
        name = k[len(p):]
        m = LORA_KEY.match(name)
        if m:
            lora[name] = v.float()
        elif ".lora_" in name:  # lora_embedding / loralib forms: not PEFT's Linear/Conv2d LoRA
            raise BadInput(f"{path}: {k}: a LoRA tensor this converter does not know")
        else:
            base[name.replace(".base_layer.", ".")] = v
    pairs = {}
    for name in lora:
        m = LORA_KEY.match(name)
        pairs.setdefault((m.group(1), m.group(3)), set()).add(m.group(2))
    for (layer, adapter), ab in pairs.items():
        if ab != {"A", "B"}:
            raise BadInput(f"{path}: the Seg LoRA of {layer} (adapter {adapter}) has lora_{''.join(ab)} only")
    ranks = {lora[n].shape[0] for n in lora if ".lora_A." in n}
    if len(ranks) > 1:
        raise BadInput(f"{path}: the Seg LoRA has several ranks {sorted(ranks)}")
    return base, lora, (ranks.pop() if ranks else 0)


def strip(model, prefix):
    return {k[len(prefix):]: v for k, v in model.items() if k.startswith(prefix)}


def check_against_sd(weights, sd_dir, comp, path):
    """Every tensor of the SD folder's component must be in the checkpoint with its shape."""
    from glob import glob
    files = sorted(glob(os.path.join(sd_dir, comp, "*.safetensors")))
    if not files:
        return
    ref = {}
    for f in files:
        with open(f, "rb") as fh:
            n = struct.unpack("<Q", fh.read(8))[0]
            h = json.loads(fh.read(n))
        h.pop("__metadata__", None)
        ref.update({k: v["shape"] for k, v in h.items()})
    ignorable = {"text_model.embeddings.position_ids"}
    missing = [k for k in ref if k not in weights and k not in ignorable]
    wrong = [f"{k}: {list(weights[k].shape)} vs {ref[k]}" for k in ref if k in weights and list(weights[k].shape) != ref[k]]
    extra = [k for k in weights if k not in ref and k not in ignorable]
    if missing or wrong or extra:
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing (e.g. {missing[0]})")
        if wrong:
            parts.append(f"{len(wrong)} of another shape (e.g. {wrong[0]})")
        if extra:
            parts.append(f"{len(extra)} unexpected (e.g. {extra[0]})")
        raise BadInput(f"{path}: its {comp} does not fit {os.path.join(sd_dir, comp)}: " + "; ".join(parts))


def count(keys, pattern):
    r = re.compile(pattern)
    return len({r.match(k).group(1) for k in keys if r.match(k)})


def head_config(head, overrides, path):
    c = dict(RELEASED_HEAD)
    try:
        ce = head["predictor.class_embed.weight"]
        c["num_classes"] = ce.shape[0] - 1
        c["hidden_dim"] = ce.shape[1]
        c["num_queries"] = head["predictor.query_feat.weight"].shape[0]
        c["dec_layers"] = count(head, r"^predictor\.transformer_self_attention_layers\.(\d+)\.") + 1
        c["dim_feedforward"] = head["predictor.transformer_ffn_layers.0.linear1.weight"].shape[0]
        c["mask_dim"] = head["predictor.mask_embed.layers.2.weight"].shape[0]
        c["conv_dim"] = head["pixel_decoder.mask_features.weight"].shape[1]
        c["enc_layers"] = count(head, r"^pixel_decoder\.transformer\.encoder\.layers\.(\d+)\.")
        c["enc_dim_feedforward"] = head["pixel_decoder.transformer.encoder.layers.0.linear1.weight"].shape[0]
        c["deformable_levels"] = head["pixel_decoder.transformer.level_embed"].shape[0]
        n_in = count(head, r"^pixel_decoder\.input_proj\.(\d+)\.") + count(head, r"^pixel_decoder\.adapter_(\d+)\.")
        c["in_channels"] = [0] * n_in
        c["in_strides"] = [4 * 2 ** i for i in range(n_in)]
    except KeyError as e:
        raise BadInput(f"{path}: the head has no {e.args[0]} (not Mask2Former's MSDeformAttn head)")
    c.update(overrides)
    return c


def convert(args):
    path = args.checkpoint
    model = load_checkpoint(path, args.trust_checkpoint)
    for comp in ("unet", "vae", "text_encoder", "tokenizer"):
        if not os.path.isdir(os.path.join(args.sd, comp)):
            raise BadInput(f"{args.sd}: no {comp}/ (--sd takes the Stable Diffusion 2.1-base folder RASS was built on)")
    unet, lora, rank = split_unet(model, path)
    vae = strip(model, FE + "sd.vae.")
    te = strip(model, FE + "sd.text_encoder.")
    check_against_sd(unet, args.sd, "unet", path)
    check_against_sd(vae, args.sd, "vae", path)
    check_against_sd(te, args.sd, "text_encoder", path)
    proj = {"feature_projections." + k: v.float() for k, v in strip(model, FE + "feature_projections.").items()}
    head = strip(model, "sem_seg_head.")
    n_taps = count(proj, r"^feature_projections\.(\d+)\.")
    dims = []
    for i in range(n_taps):
        w = proj.get(f"feature_projections.{i}.0.conv1.weight")
        if w is None:
            raise BadInput(f"{path}: feature projection {i} has no conv1 (not detectron2's BottleneckBlock)")
        dims.append(w.shape[1])
    strides = json.loads(args.feature_strides)
    if len(strides) != n_taps:
        raise BadInput(f"{path}: {n_taps} feature projections for {len(strides)} strides {strides}")
    pdim = proj["feature_projections.0.0.conv3.weight"].shape[0]
    hc = head_config(head, json.loads(args.head_config), path)
    hc["in_channels"] = [pdim] * len(hc["in_channels"])
    seg = {"architecture": "rass",
           "feature_projection": {"feature_dims": dims, "feature_strides": strides, "projection_dim": pdim,
                                  "out_features": ["res2", "res3", "res4", "res5"]},
           "head": hc, "classes": args.classes, "timestep": 1, "prompt_style": "rass",
           "input": {"min_size_test": 512, "max_size_test": 2048, "size_divisibility": 8},
           "source": {"checkpoint": os.path.abspath(path), "sd": os.path.abspath(args.sd),
                      "tool": "scripts/convert_rass.py"}}

    out = args.output.rstrip("/")
    if os.path.exists(out):
        raise FileExistsError(f"{out} exists; convert_rass.py writes a new folder")
    tmp = f"{out}.tmp.{os.getpid()}"
    os.makedirs(tmp)
    try:
        os.makedirs(os.path.join(tmp, "unet"))
        shutil.copy(os.path.join(args.sd, "unet", "config.json"), os.path.join(tmp, "unet", "config.json"))
        write_safetensors(os.path.join(tmp, "unet", "diffusion_pytorch_model.safetensors"), unet,
                          {"format": "pt", "rass": "UNet of rass.pth (SCR merged)"})
        for comp, w, fname in (("vae", vae, "diffusion_pytorch_model.safetensors"), ("text_encoder", te, "model.safetensors")):
            os.makedirs(os.path.join(tmp, comp))
            shutil.copy(os.path.join(args.sd, comp, "config.json"), os.path.join(tmp, comp, "config.json"))
            write_safetensors(os.path.join(tmp, comp, fname), w, {"format": "pt"})
        shutil.copytree(os.path.join(args.sd, "tokenizer"), os.path.join(tmp, "tokenizer"))
        if os.path.isdir(os.path.join(args.sd, "scheduler")):
            shutil.copytree(os.path.join(args.sd, "scheduler"), os.path.join(tmp, "scheduler"))
        if not args.no_plain:
            shutil.copytree(os.path.join(args.sd, "unet"), os.path.join(tmp, "unet_plain"), copy_function=link_or_copy)
        if lora:
            adapters = sorted({LORA_KEY.match(k).group(3) for k in lora})
            write_safetensors(os.path.join(tmp, "seg_lora.safetensors"), lora,
                              {"format": "pt", "lora_alpha": f"{args.lora_alpha:g}", "rank": str(rank),
                               "adapters": ",".join(adapters)})
        write_safetensors(os.path.join(tmp, "seg_head.safetensors"),
                          {**proj, **{"sem_seg_head." + k: v.float() for k, v in head.items()}}, {"format": "pt"})
        with open(os.path.join(tmp, "segment.json"), "w") as f:
            json.dump(seg, f, indent=2)
            f.write("\n")
        with open(os.path.join(tmp, "rass.json"), "w") as f:
            json.dump({"method": "scr", "timestep": 1, "prompt_style": "rass", "tool": "scripts/convert_rass.py"}, f, indent=2)
            f.write("\n")
        os.rename(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    dropped = sorted({".".join(k.split(".")[:3]) for k in model
                      if not (k.startswith(FE + "sd.") or k.startswith(FE + "feature_projections.") or k.startswith("sem_seg_head."))})
    n_lora = sum(1 for k in lora if ".lora_A." in k)
    print(f"convert_rass: wrote {out}: UNet {len(unet)} tensors, Seg LoRA {n_lora} layers rank {rank} "
          f"(alpha {args.lora_alpha:g}), {n_taps} projections {dims} -> {pdim}, head {hc['num_classes']} classes, "
          f"{hc['num_queries']} queries; dropped {', '.join(dropped) or 'nothing'}", file=sys.stderr)


def link_or_copy(src, dst):
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


@contextlib.contextmanager
def staged_folder(output):
    """A temporary folder of its own beside `output` (two conversions never
    share one), with the umask's permissions (mkdtemp makes it 0700; the folder
    is the user's model); renamed to `output` when the block ends well, removed
    otherwise. The SAM converters' (convert_sam.py, convert_samsr.py);
    convert() below renames its own folder the same way."""
    parent = os.path.dirname(os.path.abspath(output))
    try:
        tmp = tempfile.mkdtemp(prefix=os.path.basename(output) + ".tmp-convert-", dir=parent)
    except OSError as e:  # name the folder, not the temporary name inside it
        raise OSError(e.errno, e.strerror, parent) from None
    umask = os.umask(0)
    os.umask(umask)
    try:
        os.chmod(tmp, 0o777 & ~umask)
        yield tmp
        if os.path.lexists(output):
            raise FileExistsError(f"{output} appeared meanwhile; choose a new folder")
        os.rename(tmp, output)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def json_object_arg(text, what):
    """A JSON object given on the command line (`what`: the flag, in
    messages); ValueError naming it otherwise."""
    try:
        value = json.loads(text)
    except ValueError as e:
        raise ValueError(f"{what}: not JSON ({e})") from None
    if not isinstance(value, dict):
        raise ValueError(f"{what}: not a JSON object")
    return value


def run_converter(prog, convert, args):
    """convert(args) with the converters' exit codes: 3 bad input, 2 an existing
    output, 1 other I/O failures (one line naming the path). Every converter
    importing this module's BadInput uses it. TERM and HUP end it as an
    interrupt does: the staged folder is removed (exit 128 + the signal)."""
    caught = [sig for sig in (signal.SIGTERM, signal.SIGHUP) if signal.getsignal(sig) is not signal.SIG_IGN]

    def stop(signum, _frame):
        for sig in caught:  # the clean-up is not cut short by a second signal
            signal.signal(sig, signal.SIG_IGN)
        raise SystemExit(128 + signum)
    for sig in caught:  # nohup's ignored HUP stays ignored
        signal.signal(sig, stop)
    try:
        convert(args)
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        sys.exit(130)
    except BadInput as e:
        print(f"{prog}: {e}", file=sys.stderr)
        sys.exit(3)
    except FileExistsError as e:
        print(f"{prog}: {e}", file=sys.stderr)
        sys.exit(2)
    except OSError as e:
        print(f"{prog}: {e.filename or args.output}: {e.strerror or e}", file=sys.stderr)
        sys.exit(1)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("checkpoint", help="rass.pth (detectron2 checkpoint of the RASS stage-2 model)")
    ap.add_argument("--sd", required=True, help="the Stable Diffusion 2.1-base folder (diffusers layout)")
    ap.add_argument("-o", "--output", required=True, help="the model folder to create")
    ap.add_argument("--classes", default="ade20k", help="built-in class set name recorded in segment.json (default ade20k)")
    ap.add_argument("--feature-strides", default="[4, 8, 32, 16, 8, 8]",
                    help="JSON list: nominal stride of each tap (default: RASS's config)")
    ap.add_argument("--head-config", default="{}",
                    help="JSON object of head fields that the weights do not show (nheads, enc_nheads, enc_n_points, ...)")
    ap.add_argument("--lora-alpha", type=float, default=PEFT_DEFAULT_ALPHA, help="the Seg LoRA's alpha (default 8, PEFT's default)")
    ap.add_argument("--trust-checkpoint", action="store_true",
                    help="unpickle the checkpoint in full (runs code from the file; needed only for objects besides tensors)")
    ap.add_argument("--no-plain", action="store_true", help="do not link the SD UNet as unet_plain/ (--backbone plain)")
    args = ap.parse_args()
    try:
        json.loads(args.head_config)
        json.loads(args.feature_strides)
    except ValueError as e:
        ap.error(f"--head-config / --feature-strides: not JSON ({e})")
    run_converter("convert_rass", convert, args)


if __name__ == "__main__":
    main()
