"""Golden fixtures for LPIPS (lib/rass/nn/iqa_lpips.cpp, model/iqa_lpips.cpp):
the official `lpips` package (0.1.4, BSD-2; pip install lpips) with random
weights, on narrow AlexNet and VGG16 trunks of torchvision's geometry (the
official modules with their convs replaced by narrower ones: the forward code
run is the package's), so the fixtures stay small.

It writes, under tests/fixtures/iqa/:
  lpips_{alex,vgg}.safetensors   made by scripts/convert_iqa_lpips.py from files
                                 with the official structure (a torchvision-style
                                 features.N state dict with a classifier, and a
                                 weights/v0.1-style linK.model.1.weight file);
  lpips_{a,b}{0,1,2}.png         image pairs (0 and 1 share a size: one batch);
  lpips_golden.safetensors       per net: scores of the pairs [3] as pyiqa feeds
                                 them (RGB/255, normalize=True), and the gradient
                                 d(sum of the batch's LPIPS)/d(first image in [-1,1])
                                 of pairs 0 and 1 [2,3,H,W].
It also checks that the converter's --state-dict path gives the same tensors,
and that pyiqa's `lpips` arch (0.1.16, non-commercial: used only as an oracle
here, at full width) gives the official package's numbers.

Run: /tmp/loravenv/bin/python tests/nn/make_iqa_lpips_fixture.py   (torch 2.1.2, torchvision 0.16.2)
"""
import os
import subprocess
import sys
import tempfile
import warnings

import numpy as np
import torch
from PIL import Image

warnings.filterwarnings("ignore")
HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
OUT = os.path.join(ROOT, "tests", "fixtures", "iqa")
sys.path.insert(0, HERE)
import st_write  # noqa: E402
import lpips  # noqa: E402

WIDTHS = {"alex": [8, 12, 16, 12, 10], "vgg": [4, 6, 6, 8, 8, 8, 10, 10, 10, 12, 12, 12, 12]}
CONVS = {"alex": [0, 3, 6, 8, 10], "vgg": [0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28]}


def narrow(model, net, gen):
    """Replaces every trunk conv (same kernel, stride, padding) and head with narrow random ones."""
    convs = {}
    for sl in [model.net.slice1, model.net.slice2, model.net.slice3, model.net.slice4, model.net.slice5]:
        for name, m in sl.named_children():
            if isinstance(m, torch.nn.Conv2d):
                convs[int(name)] = (sl, name, m)
    cin, taps = 3, []
    for idx, w in zip(CONVS[net], WIDTHS[net]):
        sl, name, m = convs[idx]
        c = torch.nn.Conv2d(cin, w, m.kernel_size, m.stride, m.padding)
        with torch.no_grad():
            c.weight.copy_(torch.randn(c.weight.shape, generator=gen) * (2.0 / (cin * m.kernel_size[0] ** 2)) ** 0.5)
            c.bias.copy_(torch.randn(w, generator=gen) * 0.1)
        c.requires_grad_(False)
        setattr(sl, name, c)
        cin = w
    for sl in [model.net.slice1, model.net.slice2, model.net.slice3, model.net.slice4, model.net.slice5]:
        taps.append([m for m in sl.children() if isinstance(m, torch.nn.Conv2d)][-1].out_channels)
    for k, c in enumerate(taps):
        lin = torch.nn.Conv2d(c, 1, 1, bias=False)
        with torch.no_grad():  # the calibrated heads are non-negative
            lin.weight.copy_(torch.rand(lin.weight.shape, generator=gen) * 0.2)
        getattr(model, f"lin{k}").model[1] = lin
    return model.eval()


def images():
    """Crops of the example photos and degraded partners (noise, a shift)."""
    src = [np.asarray(Image.open(os.path.join(ROOT, "examples", "images", f)).convert("RGB"))
           for f in ("chelsea.png", "coffee.png", "astronaut.png")]
    rng = np.random.default_rng(11)
    sizes = [(48, 64), (48, 64), (40, 52)]  # (H, W): pairs 0 and 1 batch together
    pairs = []
    for i, (h, w) in enumerate(sizes):
        a = src[i][100:100 + h, 120:120 + w].copy()
        b = np.clip(src[i][102:102 + h, 121:121 + w].astype(np.int32) + rng.integers(-20, 21, a.shape), 0, 255)
        pairs.append((a, b.astype(np.uint8)))
    return pairs


def to_tensor(imgs):  # torchvision's to_tensor, as pyiqa loads images
    return torch.stack([torch.from_numpy(im).permute(2, 0, 1).float().div(255) for im in imgs])


def convert(net, model, tmp):
    sd = model.state_dict()
    trunk = {}
    for k, v in sd.items():
        if k.startswith("net.slice"):
            trunk["features." + k.split(".", 2)[2]] = v.clone()
    trunk["classifier.1.weight"] = torch.zeros(4, 4)  # torchvision's files carry the classifier
    lin = {k: v.clone() for k, v in sd.items() if k.startswith("lin") and not k.startswith("lins.")}
    torch.save(trunk, os.path.join(tmp, "trunk.pth"))
    torch.save(lin, os.path.join(tmp, "lin.pth"))
    torch.save(sd, os.path.join(tmp, "full.pth"))
    conv = os.path.join(ROOT, "scripts", "convert_iqa_lpips.py")
    out = os.path.join(OUT, f"lpips_{net}.safetensors")
    subprocess.run([sys.executable, conv, net, "--trunk", os.path.join(tmp, "trunk.pth"), "--lin",
                    os.path.join(tmp, "lin.pth"), "-o", out, "--force"], check=True)
    alt = os.path.join(tmp, "alt.safetensors")
    subprocess.run([sys.executable, conv, net, "--state-dict", os.path.join(tmp, "full.pth"), "-o", alt], check=True)
    assert open(out, "rb").read() == open(alt, "rb").read(), "--state-dict and --trunk/--lin differ"


def pyiqa_agrees(net):
    """pyiqa's LPIPS arch with the official module's full-width random weights."""
    import torchvision.models as tvm
    from pyiqa.archs.lpips_arch import LPIPS as PyiqaLPIPS
    # pyiqa's trunks always ask torchvision for the ImageNet weights (a
    # download): build them empty, every weight comes from load_state_dict.
    for name in ("alexnet", "vgg16"):
        real = getattr(tvm, "_real_" + name, getattr(tvm, name))
        setattr(tvm, "_real_" + name, real)
        setattr(tvm, name, lambda *a, _real=real, **k: _real(weights=None))
    torch.manual_seed(5)
    off = lpips.LPIPS(net=net, pretrained=False, pnet_rand=True, verbose=False).eval()
    for p in off.parameters():
        p.data.uniform_(0, 0.05) if p.dim() == 4 and p.shape[0] == 1 else None
    ours = PyiqaLPIPS(net=net, pretrained=False, pnet_rand=True).eval()
    ours.load_state_dict(off.state_dict())
    x, y = torch.rand(2, 3, 64, 64), torch.rand(2, 3, 64, 64)
    with torch.no_grad():
        a = off(x, y, normalize=True).flatten()
        b = ours(x, y).flatten()  # pyiqa: inputs in [0,1], normalize=True by default
    err = (a - b).abs().max().item()
    print(f"pyiqa lpips ({net}) vs official: max abs {err:.2e}")
    assert err < 1e-6


def main():
    os.makedirs(OUT, exist_ok=True)
    pairs = images()
    for i, (a, b) in enumerate(pairs):
        Image.fromarray(a).save(os.path.join(OUT, f"lpips_a{i}.png"))
        Image.fromarray(b).save(os.path.join(OUT, f"lpips_b{i}.png"))
    golden = {}
    for n, net in enumerate(["alex", "vgg"]):
        gen = torch.Generator().manual_seed(100 + n)
        model = narrow(lpips.LPIPS(net=net, pretrained=False, pnet_rand=True, verbose=False), net, gen)
        with tempfile.TemporaryDirectory() as tmp:
            convert(net, model, tmp)
        scores = []
        with torch.no_grad():
            batch = model(to_tensor([pairs[0][0], pairs[1][0]]), to_tensor([pairs[0][1], pairs[1][1]]), normalize=True)
            scores += batch.flatten().tolist()
            scores += model(to_tensor([pairs[2][0]]), to_tensor([pairs[2][1]]), normalize=True).flatten().tolist()
        golden[f"{net}.score"] = np.array(scores, np.float32)
        x = (to_tensor([pairs[0][0], pairs[1][0]]) * 2 - 1).requires_grad_(True)
        y = to_tensor([pairs[0][1], pairs[1][1]]) * 2 - 1
        model(x, y).sum().backward()
        golden[f"{net}.grad_x"] = x.grad.numpy().astype(np.float32)
        print(net, "scores", scores, "grad max", x.grad.abs().max().item())
        pyiqa_agrees(net)
    st_write.save(os.path.join(OUT, "lpips_golden.safetensors"), golden,
                  {"source": "lpips 0.1.4 (official), torch 2.1.2; tests/nn/make_iqa_lpips_fixture.py"})


if __name__ == "__main__":
    main()
