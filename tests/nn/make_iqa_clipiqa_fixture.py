#!/usr/bin/env python3
"""Golden fixture for the CLIPIQA metrics (model/iqa_clipiqa.cpp): a tiny CLIP
with OpenAI's ResNet image tower (clip-anytorch 2.6.0's clip/model.py, MIT,
the same modules as OpenAI's CLIP repository), random weights, converted by
scripts/convert_iqa_clipiqa.py from both input forms (a TorchScript archive
like OpenAI's RN50.pt, and a plain state dict), scored by pyiqa 0.1.16's
CLIPIQA as the oracle (non-commercial licence: run here only, never ported).

    /tmp/loravenv/bin/python tests/nn/make_iqa_clipiqa_fixture.py tests/fixtures/nn/clipiqa

Needs torch 2.1, clip-anytorch, ftfy, wcwidth, regex, transformers, pyiqa
(+ opencv-python-headless, einops, addict, torchvision, timm for its imports).

Written:
  clipiqa_rn50.safetensors          the converter's output (tiny model)
  clipiqa_rn50_tokenizer/           vocab.json + merges.txt: the converter's
      full CLIP BPE files cut down to the entries the prompts can reach (every
      merge whose result is a substring of a prompt word + "</w>", every vocab
      entry that is such a substring, the byte symbols and the specials), so
      BPE on the prompts makes exactly the same tokens with the real ids; the
      script checks that with transformers' CLIPTokenizer on both the full
      and the cut files against clip.tokenize.
  img_*.png                         the golden images, for the CLI test
  golden.safetensors                images (uint8 values as F32, [N,H,W,3]) of
      three sizes, pyiqa's `clipiqa` scores, the paper-pair scores with the
      positional embedding interpolated (pyiqa's pos_embedding=True path),
      the unnormalised image features of both paths, and the prompt ids.

The tiny model: vision width 8 (stem 4/4/8 channels), layers (2,1,1,1),
attention pool 256 wide with 4 heads, a 2x2 grid (+ class token) of
positional embeddings, embedding 16; text width 16, 2 heads, 2 layers, the
full 49408-token vocabulary with every row zero but the prompts' tokens (so
the file compresses in git). BatchNorm statistics and affine parameters,
LayerNorms and the residual-branch bn3 (zero at CLIP's init) are randomised.
logit_scale is ln 100 as in RN50.
"""
import gzip
import json
import math
import os
import re
import subprocess
import sys
import tempfile

import numpy as np
from PIL import Image
import safetensors.torch
import torch

import clip
from clip import model as openai_model
import pyiqa.archs.clip_model as pyiqa_clip
import pyiqa.archs.clipiqa_arch as pyiqa_clipiqa
from transformers import CLIPTokenizer

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import st_write  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
CONVERTER = os.path.join(HERE, "..", "..", "scripts", "convert_iqa_clipiqa.py")
PYIQA_PROMPTS = ["Good image", "bad image", "Sharp image", "blurry image", "sharp edges", "blurry edges",
                 "High resolution image", "low resolution image", "Noise-free image", "noisy image"]
PAPER_PROMPTS = ["Good photo.", "Bad photo."]
ARGS = dict(embed_dim=16, image_resolution=64, vision_layers=(2, 1, 1, 1), vision_width=8, vision_patch_size=None,
            context_length=77, vocab_size=49408, transformer_width=16, transformer_heads=2, transformer_layers=2)

out = sys.argv[1]
os.makedirs(out, exist_ok=True)
torch.manual_seed(11)
ref = openai_model.CLIP(**ARGS).eval()
ids_pyiqa = clip.tokenize(PYIQA_PROMPTS)
ids_paper = clip.tokenize(PAPER_PROMPTS)
used = sorted(set(ids_pyiqa.flatten().tolist()) | set(ids_paper.flatten().tolist()))
with torch.no_grad():
    for name, p in ref.named_parameters():
        if name.endswith(("bn1.weight", "bn2.weight", "bn3.weight", "downsample.1.weight")) or "ln_" in name:
            p.copy_(torch.rand_like(p) * 0.8 + 0.6 if name.endswith("weight") else torch.randn_like(p) * 0.1)
        elif name.endswith(("bn1.bias", "bn2.bias", "bn3.bias", "downsample.1.bias")):
            p.copy_(torch.randn_like(p) * 0.1)
    for name, b in ref.named_buffers():
        if name.endswith("running_mean"):
            b.copy_(torch.randn_like(b) * 0.1)
        elif name.endswith("running_var"):
            b.copy_(torch.rand_like(b) + 0.5)
    emb = torch.zeros_like(ref.token_embedding.weight)
    emb[used] = torch.randn(len(used), emb.shape[1]) * 0.5
    ref.token_embedding.weight.copy_(emb)
    ref.logit_scale.fill_(math.log(100.0))

# Converter inputs of both forms OpenAI's RN50.pt may come in.
tmp = tempfile.mkdtemp()
sd_path = os.path.join(tmp, "rn50_state_dict.pt")
torch.save(ref.state_dict(), sd_path)
jit_path = os.path.join(tmp, "RN50.pt")
with torch.no_grad():
    traced = torch.jit.trace(ref, (torch.randn(1, 3, 64, 64), ids_paper), check_trace=False)
traced.save(jit_path)
for src, dst in ((jit_path, out), (sd_path, os.path.join(tmp, "from_sd"))):
    subprocess.run([sys.executable, CONVERTER, src, "--output-dir", dst, "--text-heads", "2", "--force"], check=True)
from_jit = safetensors.torch.load_file(os.path.join(out, "clipiqa_rn50.safetensors"))
from_sd = safetensors.torch.load_file(os.path.join(tmp, "from_sd", "clipiqa_rn50.safetensors"))
assert from_jit.keys() == from_sd.keys() and all(torch.equal(from_jit[k], from_sd[k]) for k in from_jit)

# The tokenizer: the full converted files, checked, then cut to what the prompts reach.
tok_dir = os.path.join(out, "clipiqa_rn50_tokenizer")
full_tok = CLIPTokenizer(os.path.join(tok_dir, "vocab.json"), os.path.join(tok_dir, "merges.txt"))
for prompts, ids in ((PYIQA_PROMPTS, ids_pyiqa), (PAPER_PROMPTS, ids_paper)):
    for p, row in zip(prompts, ids):
        want = [t for t in row.tolist() if t != 0]
        assert full_tok(p)["input_ids"] == want, (p, full_tok(p)["input_ids"], want)
vocab = json.load(open(os.path.join(tok_dir, "vocab.json"), encoding="utf-8"))
merges = open(os.path.join(tok_dir, "merges.txt"), encoding="utf-8").read().strip().split("\n")
words = set()
for p in PYIQA_PROMPTS + PAPER_PROMPTS:
    words |= {w + "</w>" for w in re.findall(r"[a-z]+|[0-9]|[^\sa-z0-9]+", p.lower())}
reach = lambda s: any(s in w for w in words)  # noqa: E731
byte_syms = list(vocab)[:512]
kept_merges = [m for m in merges[1:] if reach("".join(m.split()))]
kept_vocab = {t: i for t, i in vocab.items()
              if t in byte_syms or reach(t) or t in ("<|startoftext|>", "<|endoftext|>")}
with open(os.path.join(tok_dir, "vocab.json"), "w", encoding="utf-8") as f:
    json.dump(kept_vocab, f, ensure_ascii=False)
with open(os.path.join(tok_dir, "merges.txt"), "w", encoding="utf-8") as f:
    f.write("\n".join([merges[0]] + kept_merges) + "\n")
cut_tok = CLIPTokenizer(os.path.join(tok_dir, "vocab.json"), os.path.join(tok_dir, "merges.txt"))
for p in PYIQA_PROMPTS + PAPER_PROMPTS:
    assert cut_tok(p)["input_ids"] == full_tok(p)["input_ids"], p

# pyiqa's CLIP (its own copy with the pos_embedding switch) on the same weights.
pm = pyiqa_clip.CLIP(**ARGS).eval()
pm.load_state_dict(ref.state_dict())
pyiqa_clipiqa.load = lambda *a, **k: pm  # CLIPIQA would download RN50.pt
metric = pyiqa_clipiqa.CLIPIQA(model_type="clipiqa", backbone="RN50", pretrained=False).eval()
mean = torch.tensor(pyiqa_clipiqa.OPENAI_CLIP_MEAN).view(1, 3, 1, 1)
std = torch.tensor(pyiqa_clipiqa.OPENAI_CLIP_STD).view(1, 3, 1, 1)

rng = np.random.default_rng(5)
golden = {"ids_pyiqa": ids_pyiqa.numpy().astype(np.int64), "ids_paper": ids_paper.numpy().astype(np.int64)}
for tag, (n, h, w) in {"a": (2, 64, 64), "b": (2, 75, 83), "c": (1, 160, 224)}.items():
    # Smooth random images (noise upsampled) so the network sees structure.
    small = rng.integers(0, 256, size=(n, 3, h // 8 + 1, w // 8 + 1)).astype(np.float32)
    big = torch.nn.functional.interpolate(torch.from_numpy(small), size=(h, w), mode="bilinear", align_corners=False)
    big = big + torch.from_numpy(rng.normal(0, 12, size=(n, 3, h, w)).astype(np.float32))
    img = big.round().clamp(0, 255)
    x = img / 255.0
    with torch.no_grad():
        s_pyiqa = metric(x)[:, 0]
        xn = (x - mean) / std
        logits, _ = pm(xn, ids_paper, pos_embedding=True)
        s_paper = logits.softmax(dim=-1)[:, 0]
        f_nopos = pm.encode_image(xn, pos_embedding=False)
        f_pos = pm.encode_image(xn, pos_embedding=True)
        if (h, w) == (64, 64):  # at the native size pyiqa's CLIP is OpenAI's
            assert torch.allclose(ref.encode_image(xn), f_pos, atol=1e-6)
            assert torch.allclose(ref.encode_text(ids_paper), pm.encode_text(ids_paper), atol=1e-6)
    print(tag, (n, h, w), "clipiqa", s_pyiqa.tolist(), "paper", s_paper.tolist())
    golden[f"img_{tag}"] = img.permute(0, 2, 3, 1).contiguous().numpy()
    for i in range(n):  # the same images as PNG for the CLI test (tests/cli/test_eval_iqa_clipiqa_maniqa.sh)
        Image.fromarray(golden[f"img_{tag}"][i].astype(np.uint8)).save(os.path.join(out, f"img_{tag}{i}.png"))
    golden[f"clipiqa_{tag}"] = s_pyiqa.numpy()
    golden[f"paper_{tag}"] = s_paper.numpy()
    golden[f"feat_nopos_{tag}"] = f_nopos.numpy()
    golden[f"feat_pos_{tag}"] = f_pos.numpy()
st_write.save(os.path.join(out, "golden.safetensors"), golden,
              {"torch": torch.__version__, "pyiqa": "0.1.16", "clip-anytorch": "2.6.0"})
