#!/usr/bin/env bash
# Benchmark of rass-eval-iqa's deep metrics (not a test): images/s at 512x512
# on this machine, ours next to the official Python package in the same run,
# with full-width networks (random torchvision trunks, the packages' own
# calibrated heads: lpips' weights/v0.1/*.pth, DISTS' weights.pt), and the
# largest difference between the two on the same images (full-width parity).
#   scripts/bench-iqa.sh [BUILD_DIR]      (BENCH_N pairs, default 8; PYTHON with
#   torch, torchvision, lpips, DISTS-pytorch; default /tmp/loravenv/bin/python)
# Sections: lpips, lpips-vgg, dists (the other deep metrics add their own).
set -euo pipefail
build=$(cd "${1:-build}" && pwd)
root=$(cd "$(dirname "$0")/.." && pwd)
py=${PYTHON:-/tmp/loravenv/bin/python}
n=${BENCH_N:-8}
threads=$(nproc)
work=$(mktemp -d /tmp/rass-bench-iqa.XXXXXX)
trap 'rm -rf "$work"' EXIT
echo "machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $threads cores; $n pairs 512x512"

# Weights (random trunks; a seed makes them repeatable) and images.
"$py" - "$work" "$n" "$root" <<'PY'
import os, subprocess, sys, warnings
warnings.filterwarnings("ignore")
import numpy as np, torch, torchvision.models as tvm
from PIL import Image
work, n, root = sys.argv[1], int(sys.argv[2]), sys.argv[3]
torch.manual_seed(0)
os.makedirs(f"{work}/w"); os.makedirs(f"{work}/pred"); os.makedirs(f"{work}/gt")
for name, ctor in (("alex", tvm.alexnet), ("vgg", tvm.vgg16)):
    torch.save(ctor(weights=None).state_dict(), f"{work}/{name}.pth")
    subprocess.run([sys.executable, f"{root}/scripts/convert_iqa_lpips.py", name, "--trunk", f"{work}/{name}.pth",
                    "-o", f"{work}/w/lpips_{name}.safetensors"], check=True, capture_output=True)
subprocess.run([sys.executable, f"{root}/scripts/convert_iqa_dists.py", "--trunk", f"{work}/vgg.pth",
                "-o", f"{work}/w/dists.safetensors"], check=True, capture_output=True)
src = np.asarray(Image.open(f"{root}/examples/images/astronaut.png").convert("RGB"))
rng = np.random.default_rng(0)
for i in range(n):
    a = np.roll(src, 7 * i, axis=1)[:512, :512]
    b = np.clip(a.astype(int) + rng.integers(-25, 26, a.shape), 0, 255).astype(np.uint8)
    Image.fromarray(a).save(f"{work}/pred/{i:03d}.png"); Image.fromarray(b).save(f"{work}/gt/{i:03d}.png")
PY

for metric in lpips lpips-vgg dists; do
  start=$(date +%s.%N)
  "$build/rass-eval-iqa" -q -m "$metric" --weights "$work/w" "$work/pred" "$work/gt" --csv "$work/$metric.csv" --no-table
  end=$(date +%s.%N)
  ours=$(awk -v a="$start" -v b="$end" -v n="$n" 'BEGIN { printf "%.2f", n / (b - a) }')
  "$py" - "$work" "$metric" "$ours" "$threads" <<'PY'
import csv, os, sys, time, warnings
warnings.filterwarnings("ignore")
import numpy as np, torch, torchvision.models as tvm
from PIL import Image
work, metric, ours, threads = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
torch.set_num_threads(threads)
real_vgg16 = tvm.vgg16
tvm.vgg16 = lambda *a, **k: real_vgg16(weights=None)  # DISTS asks for the ImageNet download
import lpips
from DISTS_pytorch import DISTS
from safetensors.torch import load_file
sd = load_file(f"{work}/w/" + {"lpips": "lpips_alex", "lpips-vgg": "lpips_vgg", "dists": "dists"}[metric] + ".safetensors")
if metric == "dists":
    model = DISTS(load_weights=False)
else:
    model = lpips.LPIPS(net="alex" if metric == "lpips" else "vgg", pretrained=False, pnet_rand=True, verbose=False)
model.load_state_dict(sd, strict=False)
model.eval()
names = sorted(os.listdir(f"{work}/pred"))
t = lambda p: torch.from_numpy(np.asarray(Image.open(p).convert("RGB"))).permute(2, 0, 1).float().div(255)[None]
ref, start = {}, time.time()
with torch.no_grad():
    for f in names:
        x, y = t(f"{work}/pred/{f}"), t(f"{work}/gt/{f}")
        ref[f[:-4]] = (model(x, y, normalize=True) if metric != "dists" else model(x, y)).item()
rate = len(names) / (time.time() - start)
got = {r["name"]: float(r[metric]) for r in csv.DictReader(open(f"{work}/{metric}.csv")) if r["name"] != "mean"}
err = max(abs(got[k] - ref[k]) for k in ref)
print(f"{metric:10s} rass-eval-iqa {ours} images/s (decode included, default -j/--threads); "
      f"official package {rate:.2f} images/s ({threads} threads, decode included); max |diff| {err:.2e}")
PY
done
