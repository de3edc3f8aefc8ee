#!/usr/bin/env python3
"""Golden fixture for MANIQA (nn/iqa_maniqa.cpp, model/iqa_maniqa.cpp): a tiny
MANIQA built by the official code (github.com/IIGROUP/MANIQA at f573d86,
Apache-2.0: models/maniqa.py + models/swin.py, a checkout given in
MANIQA_SRC, kept outside this repository) on timm 0.9.16's
VisionTransformer, random weights, saved as the official release is (a
state dict, ckpt_koniq10k.pt) and as pyiqa wraps it ({"params": ...} with
"module." prefixes), converted by scripts/convert_iqa_maniqa.py; scored by
the official network on given crops (per-crop score, the maniqa@official
protocol) and by pyiqa 0.1.16's MANIQA (oracle only, non-commercial
licence: never ported) with its 20 uniform-grid crops.

    MANIQA_SRC=/path/to/MANIQA /tmp/loravenv/bin/python tests/nn/make_iqa_maniqa_fixture.py tests/fixtures/nn/maniqa

The tiny model: crops 64 (an 8x8 grid of 8-pixel patches), ViT width 16,
2 heads, 12 blocks (10 and 11 and the head exist in the checkpoint and are
dropped by the converter), embed_dim 16 (conv1 64 -> 16, conv2 -> 8), two
TABlocks per stage, Swin depths [2, 2], heads [2, 2], window 4 (so the
shifted-window mask is exercised), dim_mlp 32, scale 0.8. pyiqa hard-codes
224 crops, so its uniform_crop is called with 64 here (the C++ takes the
crop size from the network). LayerNorms, biases and the relative-position
tables are randomised; fc_score's last bias is raised so that its ReLU does
not zero every patch.
"""
import os
import subprocess
import sys
import tempfile

import numpy as np
from PIL import Image
import safetensors.torch
import torch
import timm
from timm.models.vision_transformer import VisionTransformer

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import st_write  # noqa: E402

SRC = os.environ["MANIQA_SRC"]
HERE = os.path.dirname(os.path.abspath(__file__))
CONVERTER = os.path.join(HERE, "..", "..", "scripts", "convert_iqa_maniqa.py")
S = 64
out = sys.argv[1]
os.makedirs(out, exist_ok=True)


def tiny_vit(*args, **kwargs):  # stands in for timm.create_model('vit_base_patch8_224', pretrained=True)
    return VisionTransformer(img_size=S, patch_size=8, embed_dim=16, depth=12, num_heads=2, mlp_ratio=4.0,
                             qkv_bias=True, num_classes=10)


timm.create_model = tiny_vit
torch.Tensor.cuda = lambda self, *a, **k: self  # the official forward builds its result with .cuda()
sys.path.insert(0, SRC)
from models.maniqa import MANIQA as OfficialManiqa  # noqa: E402
import pyiqa.archs.maniqa_arch as pyiqa_maniqa  # noqa: E402

CFG = dict(embed_dim=16, num_outputs=1, patch_size=8, drop=0.1, depths=[2, 2], window_size=4, dim_mlp=32,
           num_heads=[2, 2], img_size=S, num_tab=2, scale=0.8)
torch.manual_seed(7)
net = OfficialManiqa(**CFG).eval()
with torch.no_grad():
    for name, p in net.named_parameters():
        if "norm" in name and name.endswith("weight"):
            p.copy_(torch.rand_like(p) * 0.8 + 0.6)
        elif name.endswith("bias") or "relative_position_bias_table" in name:
            p.copy_(torch.randn_like(p) * 0.3)
        elif name in ("vit.cls_token", "vit.pos_embed"):
            p.copy_(torch.randn_like(p) * 0.3)
    net.fc_score[3].bias.fill_(0.5)

tmp = tempfile.mkdtemp()
official_path = os.path.join(tmp, "ckpt_koniq10k.pt")
torch.save(net.state_dict(), official_path)
pyiqa_path = os.path.join(tmp, "MANIQA_pyiqa_style.pth")
torch.save({"params": {"module." + k: v for k, v in net.state_dict().items()}}, pyiqa_path)
for src, dst in ((official_path, out), (pyiqa_path, os.path.join(tmp, "from_pyiqa"))):
    subprocess.run([sys.executable, CONVERTER, src, "--dataset", "koniq", "--output-dir", dst, "--vit-heads", "2",
                    "--force"], check=True)
a = safetensors.torch.load_file(os.path.join(out, "maniqa_koniq.safetensors"))
b = safetensors.torch.load_file(os.path.join(tmp, "from_pyiqa", "maniqa_koniq.safetensors"))
assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
assert not any(k.startswith(("vit.blocks.10.", "vit.blocks.11.", "vit.head", "vit.norm")) for k in a)

# pyiqa's MANIQA on the same weights; its crops are 224, made 64 here.
uniform_crop = pyiqa_maniqa.uniform_crop
pyiqa_maniqa.uniform_crop = lambda x, crop_size, crop_num: uniform_crop(x, S, crop_num)
metric = pyiqa_maniqa.MANIQA(**CFG, test_sample=20, pretrained=False).eval()
metric.load_state_dict(net.state_dict())

rng = np.random.default_rng(3)
golden = {}
for tag, (n, h, w) in {"a": (2, 80, 96), "b": (1, 50, 70), "c": (1, 64, 100)}.items():
    small = rng.integers(0, 256, size=(n, 3, h // 8 + 1, w // 8 + 1)).astype(np.float32)
    big = torch.nn.functional.interpolate(torch.from_numpy(small), size=(h, w), mode="bilinear", align_corners=False)
    img = (big + torch.from_numpy(rng.normal(0, 12, size=(n, 3, h, w)).astype(np.float32))).round().clamp(0, 255)
    x = img / 255.0
    with torch.no_grad():
        s = metric(x)[:, 0]
    print(tag, (n, h, w), "pyiqa maniqa", s.tolist())
    golden[f"img_{tag}"] = img.permute(0, 2, 3, 1).contiguous().numpy()
    for i in range(n):  # the same images as PNG for the CLI test (tests/cli/test_eval_iqa_clipiqa_maniqa.sh)
        Image.fromarray(golden[f"img_{tag}"][i].astype(np.uint8)).save(os.path.join(out, f"img_{tag}{i}.png"))
    golden[f"pyiqa_{tag}"] = s.numpy()

# The official network on given crops of image a[0] (maniqa@official's step).
x = golden["img_a"][0].transpose(2, 0, 1) / 255.0
pos = np.array([[0, 0], [16, 32], [15, 31], [3, 7], [16, 0]], dtype=np.int64)
crops = torch.from_numpy(np.stack([x[:, t:t + S, l:l + S] for t, l in pos]).astype(np.float32))
with torch.no_grad():
    per_crop = net((crops - 0.5) / 0.5)
print("official per-crop", per_crop.tolist())
golden["official_pos"] = pos
golden["official_crop_scores"] = per_crop.numpy()
st_write.save(os.path.join(out, "golden.safetensors"), golden,
              {"torch": torch.__version__, "timm": timm.__version__, "pyiqa": "0.1.16", "maniqa": "f573d86"})
