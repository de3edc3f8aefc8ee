#!/usr/bin/env python3
"""Convert OpenAI CLIP's RN50 checkpoint into the files rass-eval-iqa's
CLIPIQA metrics read from the weights folder (--weights DIR):

    python3 scripts/convert_iqa_clipiqa.py RN50.pt --output-dir DIR [--bpe bpe_simple_vocab_16e6.txt.gz]

Input: RN50.pt as OpenAI releases it (fp16 weights, widened to float32
exactly; the TorchScript archive that
clip.load("RN50") downloads, sha256 afeb0e10f9e5a86d... in its URL) or a plain
state dict of the same model saved with torch.save (e.g. clip.load(...,
jit=False)[0].state_dict()). pyiqa's `clipiqa` uses exactly this file.
The weights carry OpenAI's MIT licence.

Written in DIR (atomically; an existing output is refused unless --force):

  clipiqa_rn50.safetensors  float32 tensors:
      visual.*              the ModifiedResNet image encoder, OpenAI's names
                            unchanged (conv1..3, bn1..3, layer1..4, attnpool)
      text_model.*          the text transformer under transformers'
                            CLIPTextModel names (the project's CLIP text
                            encoder): attn.in_proj split into q/k/v_proj,
                            ln_1/ln_2 -> layer_norm1/2, mlp.c_fc/c_proj ->
                            mlp.fc1/fc2, ln_final -> final_layer_norm,
                            token_embedding / positional_embedding ->
                            embeddings.token_embedding / position_embedding
      text_projection.weight  OpenAI's text_projection transposed (a Linear
                            without bias, as transformers stores it)
      logit_scale           unchanged (log of the similarity scale, 100 for RN50)
    metadata: vision_heads, text_heads (what OpenAI's build_model derives:
    vision width * 32 / 64 and text width / 64), text_act quick_gelu.
  clipiqa_rn50_tokenizer/vocab.json, merges.txt
      CLIP's byte-level BPE (bpe_simple_vocab_16e6.txt.gz, shipped inside the
      `clip` package and OpenAI's repository) in the layout of transformers'
      CLIPTokenizer: the 256 byte symbols, the same with "</w>", one entry per
      merge, then <|startoftext|> and <|endoftext|> (ids 49406, 49407).

Needs torch; --bpe defaults to the file inside an installed `clip` package
(clip-anytorch or openai-clip).
"""
import argparse
import gzip
import json
import os
import re
import struct
import sys

import torch

# What OpenAI's jit archive carries besides the weights (build_model drops them).
NOT_WEIGHTS = {"input_resolution", "context_length", "vocab_size"}
N_MERGES = 49152 - 256 - 2  # CLIP's SimpleTokenizer and transformers both keep this many
DTYPES = {torch.float32: "F32"}


class BadInput(Exception):
    pass


def load_state_dict(path):
    # torch.jit.load names a missing file with a ValueError, not as bad input.
    if not os.path.isfile(path):
        raise BadInput(f"{path}: no such file")
    try:
        return torch.jit.load(path, map_location="cpu").state_dict()
    except RuntimeError:
        pass  # not a TorchScript archive: a plain state dict
    try:
        sd = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - any unreadable file is bad input
        raise BadInput(f"{path}: neither a TorchScript archive nor a readable state dict ({type(e).__name__}: {e})")
    if isinstance(sd, dict) and "state_dict" in sd and isinstance(sd["state_dict"], dict):
        sd = sd["state_dict"]
    if not isinstance(sd, dict) or not all(isinstance(v, torch.Tensor) for v in sd.values()):
        raise BadInput(f"{path}: not a state dict of tensors")
    return sd


def convert(sd, path, text_heads=None):
    sd = {k: v for k, v in sd.items() if k not in NOT_WEIGHTS}
    need = ["visual.layer1.0.conv1.weight", "visual.attnpool.positional_embedding", "token_embedding.weight",
            "positional_embedding", "ln_final.weight", "text_projection", "logit_scale"]
    missing = [k for k in need if k not in sd]
    if missing:
        hint = " (a ViT CLIP? only the ResNet RN50 is supported)" if "visual.proj" in sd else ""
        raise BadInput(f"{path}: missing {', '.join(missing)}: not an OpenAI CLIP ResNet checkpoint{hint}")
    out = {}
    layer_re = re.compile(r"transformer\.resblocks\.(\d+)\.(.*)")
    names = {"attn.out_proj.weight": "self_attn.out_proj.weight", "attn.out_proj.bias": "self_attn.out_proj.bias",
             "ln_1.weight": "layer_norm1.weight", "ln_1.bias": "layer_norm1.bias",
             "ln_2.weight": "layer_norm2.weight", "ln_2.bias": "layer_norm2.bias",
             "mlp.c_fc.weight": "mlp.fc1.weight", "mlp.c_fc.bias": "mlp.fc1.bias",
             "mlp.c_proj.weight": "mlp.fc2.weight", "mlp.c_proj.bias": "mlp.fc2.bias"}
    for k, v in sd.items():
        v = v.detach().float().contiguous()
        if k.startswith("visual."):
            out[k] = v
            continue
        m = layer_re.fullmatch(k)
        if m:
            i, rest = m.groups()
            p = f"text_model.encoder.layers.{i}."
            if rest in ("attn.in_proj_weight", "attn.in_proj_bias"):
                kind = "weight" if rest.endswith("weight") else "bias"
                for name, part in zip(("q_proj", "k_proj", "v_proj"), v.chunk(3, dim=0)):
                    out[f"{p}self_attn.{name}.{kind}"] = part.contiguous()
            elif rest in names:
                out[p + names[rest]] = v
            else:
                raise BadInput(f"{path}: unexpected tensor {k}")
        elif k == "token_embedding.weight":
            out["text_model.embeddings.token_embedding.weight"] = v
        elif k == "positional_embedding":
            out["text_model.embeddings.position_embedding.weight"] = v
        elif k in ("ln_final.weight", "ln_final.bias"):
            out["text_model.final_layer_norm." + k.split(".")[1]] = v
        elif k == "text_projection":
            out["text_projection.weight"] = v.t().contiguous()
        elif k == "logit_scale":
            out["logit_scale"] = v
        else:
            raise BadInput(f"{path}: unexpected tensor {k}")
    vision_width = sd["visual.layer1.0.conv1.weight"].shape[0]
    text_width = sd["ln_final.weight"].shape[0]
    heads = text_heads if text_heads else text_width // 64
    if heads <= 0 or text_width % heads:
        raise BadInput(f"{path}: text width {text_width} is not divisible into heads of 64 (give --text-heads)")
    meta = {"format": "pt", "converter": "convert_iqa_clipiqa.py", "source": os.path.basename(path),
            "vision_heads": str(vision_width * 32 // 64), "text_heads": str(heads), "text_act": "quick_gelu"}
    return out, meta


def bytes_to_unicode():
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, map(chr, cs)))


def tokenizer_files(bpe_path):
    """(vocab dict, merges lines) as transformers' CLIPTokenizer files hold them."""
    try:
        lines = gzip.open(bpe_path).read().decode("utf-8").split("\n")
    except OSError as e:
        raise BadInput(f"{bpe_path}: not CLIP's gzipped BPE file ({e})")
    merges = lines[1:N_MERGES + 1]
    if len(merges) != N_MERGES or any(len(m.split()) != 2 for m in merges):
        raise BadInput(f"{bpe_path}: expected {N_MERGES} merge lines of two symbols after the header")
    symbols = list(bytes_to_unicode().values())
    vocab = symbols + [s + "</w>" for s in symbols] + ["".join(m.split()) for m in merges]
    vocab += ["<|startoftext|>", "<|endoftext|>"]
    return {t: i for i, t in enumerate(vocab)}, ["#version: 0.2"] + merges


def write_atomic(path, data, force):
    if os.path.exists(path) and not force:
        raise FileExistsError(f"{path} exists (use --force to replace it)")
    tmp = f"{path}.tmp.{os.getpid()}"
    try:
        with open(tmp, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def safetensors_bytes(tensors, metadata):
    header, blobs, offset = {}, [], 0
    for name in sorted(tensors):
        t = tensors[name]
        data = t.numpy().tobytes()
        header[name] = {"dtype": DTYPES[t.dtype], "shape": list(t.shape), "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    header["__metadata__"] = metadata
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text)) + text + b"".join(blobs)


def default_bpe():
    try:
        import clip  # noqa: F401 - only for the location of its BPE file
    except ImportError:
        return None
    p = os.path.join(os.path.dirname(clip.__file__), "bpe_simple_vocab_16e6.txt.gz")
    return p if os.path.exists(p) else None


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("checkpoint", help="OpenAI CLIP RN50.pt (TorchScript archive) or a plain state dict")
    ap.add_argument("--output-dir", default=".", help="the weights folder (default: the current folder)")
    ap.add_argument("--bpe", help="CLIP's bpe_simple_vocab_16e6.txt.gz (default: the installed clip package's)")
    ap.add_argument("--name", default="clipiqa_rn50", help="output stem (default clipiqa_rn50)")
    ap.add_argument("--text-heads", type=int, help="text attention heads (default: width / 64 as OpenAI's build_model)")
    ap.add_argument("--force", action="store_true", help="replace existing outputs")
    a = ap.parse_args(argv)
    try:
        bpe = a.bpe or default_bpe()
        if not bpe:
            raise BadInput("no --bpe given and no installed clip package carries bpe_simple_vocab_16e6.txt.gz")
        vocab, merges = tokenizer_files(bpe)
        tensors, meta = convert(load_state_dict(a.checkpoint), a.checkpoint, a.text_heads)
        if tensors["text_model.embeddings.token_embedding.weight"].shape[0] != len(vocab):
            raise BadInput(f"{a.checkpoint}: token embedding has {tensors['text_model.embeddings.token_embedding.weight'].shape[0]}"
                           f" rows, the BPE vocabulary {len(vocab)}")
        tok_dir = os.path.join(a.output_dir, a.name + "_tokenizer")
        out = os.path.join(a.output_dir, a.name + ".safetensors")
        outputs = [os.path.join(tok_dir, "vocab.json"), os.path.join(tok_dir, "merges.txt"), out]
        if not a.force and any(os.path.exists(p) for p in outputs):
            raise FileExistsError(f"{next(p for p in outputs if os.path.exists(p))} exists (use --force to replace it)")
        os.makedirs(a.output_dir, exist_ok=True)
        os.makedirs(tok_dir, exist_ok=True)
        write_atomic(os.path.join(tok_dir, "vocab.json"), json.dumps(vocab, ensure_ascii=False).encode("utf-8"), a.force)
        write_atomic(os.path.join(tok_dir, "merges.txt"), ("\n".join(merges) + "\n").encode("utf-8"), a.force)
        write_atomic(out, safetensors_bytes(tensors, meta), a.force)
        print(f"wrote {out} ({len(tensors)} tensors) and {tok_dir}/", file=sys.stderr)
    except BadInput as e:
        print(f"convert_iqa_clipiqa: {e}", file=sys.stderr)
        return 3
    except FileExistsError as e:  # a usage error, as the other converters: exit 2
        print(f"convert_iqa_clipiqa: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
