"""Golden fixtures for DISTS (lib/rass/nn/iqa_dists.cpp, model/iqa_dists.cpp):
the official DISTS_pytorch (pip DISTS-pytorch 0.1, MIT) with random weights,
on a narrow VGG16 of torchvision's geometry (the official module with its
convs, L2 poolings and alpha/beta resized: the forward code run is the
package's), so the fixture stays small.

Writes, under tests/fixtures/iqa/:
  dists.safetensors          made by scripts/convert_iqa_dists.py from files with
                             the official structure (torchvision-style VGG16
                             features.N with a classifier; a weights.pt-style
                             alpha/beta file);
  dists_{a,b}3.png           a 300x280 pair (smaller side over 256);
  dists_golden.safetensors   scores [3] of the LPIPS fixture's image pairs
                             (lpips_{a,b}{0,1,2}.png; pairs 0 and 1 as one batch),
                             RGB/255 at full resolution (pyiqa's and the pip
                             script's convention), and the gradient of the
                             batch's sum with respect to the first images [2,3,H,W];
                             for the 300x280 pair, "full.score" at full resolution
                             and "official.score" through the repository script's
                             prepare_image(resize=True) (PIL bilinear to 256 on the
                             smaller side: `dists@official`).
Also checks the converter's --state-dict path, and that pyiqa's `dists` arch
(0.1.16, non-commercial: an oracle only, at full width) gives the official numbers.

Run after make_iqa_lpips_fixture.py (it reads its images):
  /tmp/loravenv/bin/python tests/nn/make_iqa_dists_fixture.py
"""
import os
import subprocess
import sys
import tempfile
import warnings

import numpy as np
import torch
import torchvision.models as tvm
from PIL import Image

warnings.filterwarnings("ignore")
HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
OUT = os.path.join(ROOT, "tests", "fixtures", "iqa")
sys.path.insert(0, HERE)
import st_write  # noqa: E402

# The reference asks torchvision for the ImageNet VGG16 (a download): build it
# empty instead; every weight is set below or comes from load_state_dict.
_real_vgg16 = tvm.vgg16
tvm.vgg16 = lambda *a, **k: _real_vgg16(weights=None)
from DISTS_pytorch import DISTS  # noqa: E402
from DISTS_pytorch.DISTS_pt import L2pooling  # noqa: E402

WIDTHS = [4, 6, 6, 8, 8, 8, 10, 10, 10, 12, 12, 12, 12]
CONVS = [0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28]


def narrow(model, gen):
    stages = [model.stage1, model.stage2, model.stage3, model.stage4, model.stage5]
    where = {int(n): st for st in stages for n, _ in st.named_children()}
    cin, chns = 3, [3]
    for idx, w in zip(CONVS, WIDTHS):
        c = torch.nn.Conv2d(cin, w, 3, 1, 1)
        with torch.no_grad():
            c.weight.copy_(torch.randn(c.weight.shape, generator=gen) * (2.0 / (cin * 9)) ** 0.5)
            c.bias.copy_(torch.randn(w, generator=gen) * 0.1)
        setattr(where[idx], str(idx), c)
        cin = w
        if idx + 2 in (4, 9, 16, 23):
            setattr(where[idx + 2], str(idx + 2), L2pooling(channels=w))
        if idx + 2 in (4, 9, 16, 23, 30):
            chns.append(w)
    model.chns = chns
    with torch.no_grad():
        model.alpha = torch.nn.Parameter(torch.rand(1, sum(chns), 1, 1, generator=gen) * 0.1 + 0.01)
        model.beta = torch.nn.Parameter(torch.rand(1, sum(chns), 1, 1, generator=gen) * 0.1 + 0.01)
    for p in model.parameters():
        p.requires_grad = False
    return model.eval()


def to_tensor(imgs):  # torchvision's to_tensor, as pyiqa and the DISTS script load images
    return torch.stack([torch.from_numpy(im).permute(2, 0, 1).float().div(255) for im in imgs])


def convert(model, tmp):
    sd = model.state_dict()
    trunk = {"features." + k.split(".", 1)[1]: v.clone() for k, v in sd.items()
             if k.startswith("stage") and not k.endswith(".filter")}
    trunk["classifier.0.weight"] = torch.zeros(4, 4)
    torch.save(trunk, os.path.join(tmp, "vgg16.pth"))
    torch.save({"alpha": sd["alpha"].clone(), "beta": sd["beta"].clone()}, os.path.join(tmp, "weights.pt"))
    torch.save(sd, os.path.join(tmp, "full.pth"))
    conv = os.path.join(ROOT, "scripts", "convert_iqa_dists.py")
    out = os.path.join(OUT, "dists.safetensors")
    subprocess.run([sys.executable, conv, "--trunk", os.path.join(tmp, "vgg16.pth"), "--dists",
                    os.path.join(tmp, "weights.pt"), "-o", out, "--force"], check=True)
    alt = os.path.join(tmp, "alt.safetensors")
    subprocess.run([sys.executable, conv, "--state-dict", os.path.join(tmp, "full.pth"), "-o", alt], check=True)
    assert open(out, "rb").read() == open(alt, "rb").read(), "--state-dict and --trunk/--dists differ"


def pyiqa_agrees():
    from pyiqa.archs.dists_arch import DISTS as PyiqaDISTS
    torch.manual_seed(3)
    off = DISTS(load_weights=False).eval()
    ours = PyiqaDISTS(pretrained=False).eval()
    ours.load_state_dict(off.state_dict())
    x, y = torch.rand(2, 3, 64, 64), torch.rand(2, 3, 64, 64)
    with torch.no_grad():
        a, b = off(x, y).flatten(), ours(x, y).flatten()
    err = (a - b).abs().max().item()
    print(f"pyiqa dists vs official: max abs {err:.2e}")
    assert err < 1e-6


def main():
    pairs = [(np.asarray(Image.open(os.path.join(OUT, f"lpips_a{i}.png"))),
              np.asarray(Image.open(os.path.join(OUT, f"lpips_b{i}.png")))) for i in range(3)]
    gen = torch.Generator().manual_seed(7)
    model = narrow(DISTS(load_weights=False), gen)
    with tempfile.TemporaryDirectory() as tmp:
        convert(model, tmp)
    with torch.no_grad():
        s = model(to_tensor([pairs[0][0], pairs[1][0]]), to_tensor([pairs[0][1], pairs[1][1]])).flatten().tolist()
        s.append(model(to_tensor([pairs[2][0]]), to_tensor([pairs[2][1]])).item())
    x = to_tensor([pairs[0][0], pairs[1][0]]).requires_grad_(True)
    model(x, to_tensor([pairs[0][1], pairs[1][1]]), require_grad=True).sum().backward()
    print("dists scores", s, "grad max", x.grad.abs().max().item())
    # A pair whose smaller side exceeds 256: smooth synthetic content (small PNGs).
    yy, xx = np.mgrid[0:280, 0:300].astype(np.float64)
    a = np.stack([128 + 100 * np.sin(xx / 17 + c) * np.cos(yy / 23 - c) for c in range(3)], -1)
    b = np.stack([128 + 90 * np.sin((xx + 3) / 17 + c) * np.cos(yy / 21 - c) for c in range(3)], -1)
    a3, b3 = (Image.fromarray(np.clip(np.round(v), 0, 255).astype(np.uint8)) for v in (a, b))
    a3.save(os.path.join(OUT, "dists_a3.png"))
    b3.save(os.path.join(OUT, "dists_b3.png"))
    from DISTS_pytorch.DISTS_pt import prepare_image
    with torch.no_grad():
        full = model(prepare_image(a3, resize=False), prepare_image(b3, resize=False)).item()
        ra, rb = prepare_image(a3, resize=True), prepare_image(b3, resize=True)
        assert ra.shape[2:] == (256, 274), ra.shape
        official = model(ra, rb).item()
    print("dists 300x280: full", full, "official (resized)", official)
    pyiqa_agrees()
    st_write.save(os.path.join(OUT, "dists_golden.safetensors"),
                  {"score": np.array(s, np.float32), "grad_x": x.grad.numpy().astype(np.float32),
                   "full.score": np.array([full], np.float32), "official.score": np.array([official], np.float32)},
                  {"source": "DISTS-pytorch 0.1 (official), torch 2.1.2; tests/nn/make_iqa_dists_fixture.py"})


if __name__ == "__main__":
    main()
