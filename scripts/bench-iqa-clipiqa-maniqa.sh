#!/usr/bin/env bash
# Benchmark of rass-eval-iqa's CLIPIQA and MANIQA metrics (not a test):
# images/s at 512x512 on this machine, ours next to pyiqa (the reference the
# paper numbers come from) in the same run, with full-size networks of random
# weights (OpenAI CLIP RN50 from clip's model code; the official MANIQA on
# timm's vit_base_patch8_224), and the largest difference between the two on
# the same images (full-size parity).
#   scripts/bench-iqa-clipiqa-maniqa.sh [BUILD_DIR]   (BENCH_N images, default 4;
#   BENCH_N_MANIQA, default 2: 20 ViT-B/8 crops per image; PYTHON with torch,
#   clip-anytorch, timm, pyiqa; MANIQA_SRC = a checkout of IIGROUP/MANIQA;
#   BENCH_METRICS, default "clipiqa clipiqa@paper maniqa")
# Kept apart from scripts/bench-iqa.sh (LPIPS/DISTS) so the two merge freely.
set -euo pipefail
build=$(cd "${1:-build}" && pwd)
root=$(cd "$(dirname "$0")/.." && pwd)
py=${PYTHON:-/tmp/loravenv/bin/python}
n=${BENCH_N:-4}
nm=${BENCH_N_MANIQA:-2}
: "${MANIQA_SRC:?MANIQA_SRC must name a checkout of github.com/IIGROUP/MANIQA}"
threads=$(nproc)
work=$(mktemp -d /tmp/rass-bench-iqa-cm.XXXXXX)
trap 'rm -rf "$work"' EXIT
echo "machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $threads cores; 512x512 images"

"$py" - "$work" "$n" "$root" <<'PY'
import os, subprocess, sys, warnings
warnings.filterwarnings("ignore")
import numpy as np, torch
from PIL import Image
from clip import model as cm
work, n, root = sys.argv[1], int(sys.argv[2]), sys.argv[3]
torch.manual_seed(0)
os.makedirs(f"{work}/w"); os.makedirs(f"{work}/img")
rn50 = cm.CLIP(1024, 224, (3, 4, 6, 3), 64, None, 77, 49408, 512, 8, 12)
# As released: OpenAI's RN50.pt holds fp16 weights (build_model rounds them so).
rn50 = cm.build_model(rn50.state_dict()).float()
torch.save(rn50.state_dict(), f"{work}/RN50_sd.pt")
subprocess.run([sys.executable, f"{root}/scripts/convert_iqa_clipiqa.py", f"{work}/RN50_sd.pt", "--output-dir",
                f"{work}/w"], check=True, capture_output=True)
src = np.asarray(Image.open(f"{root}/examples/images/astronaut.png").convert("RGB"))
rng = np.random.default_rng(0)
for i in range(n):
    a = np.roll(src, 7 * i, axis=1)[:512, :512]
    a = np.clip(a.astype(int) + rng.integers(-20, 21, a.shape), 0, 255).astype(np.uint8)
    Image.fromarray(a).save(f"{work}/img/{i:03d}.png")
PY

"$py" - "$work" "$root" <<'PY'
import os, subprocess, sys, warnings
warnings.filterwarnings("ignore")
import torch, timm
work, root = sys.argv[1], sys.argv[2]
real = timm.create_model
timm.create_model = lambda name, pretrained=False, **k: real(name, pretrained=False, **k)
torch.Tensor.cuda = lambda self, *a, **k: self
sys.path.insert(0, os.environ["MANIQA_SRC"])
from models.maniqa import MANIQA
torch.manual_seed(0)
net = MANIQA(embed_dim=768, num_outputs=1, dim_mlp=768, patch_size=8, img_size=224, window_size=4, depths=[2, 2],
             num_heads=[4, 4], num_tab=2, scale=0.8)
with torch.no_grad():
    net.fc_score[3].bias.fill_(0.5)  # random heads would otherwise ReLU every patch to 0
torch.save(net.state_dict(), f"{work}/ckpt_koniq10k.pt")
subprocess.run([sys.executable, f"{root}/scripts/convert_iqa_maniqa.py", f"{work}/ckpt_koniq10k.pt", "--dataset",
                "koniq", "--output-dir", f"{work}/w"], check=True, capture_output=True)
PY
mkdir -p "$work/img_m"
for f in $(ls "$work/img" | head -n "$nm"); do cp "$work/img/$f" "$work/img_m/"; done

for metric in ${BENCH_METRICS:-clipiqa clipiqa@paper maniqa}; do
  dir=$work/img; count=$n
  [ "$metric" = maniqa ] && dir=$work/img_m && count=$nm
  start=$(date +%s.%N)
  "$build/rass-eval-iqa" -q -m "$metric" --weights "$work/w" "$dir" --csv "$work/$metric.csv" --no-table
  end=$(date +%s.%N)
  ours=$(awk -v a="$start" -v b="$end" -v n="$count" 'BEGIN { printf "%.3f", n / (b - a) }')
  "$py" - "$work" "$metric" "$ours" "$threads" "$dir" <<'PY'
import csv, os, sys, time, warnings
warnings.filterwarnings("ignore")
import numpy as np, torch, timm
from PIL import Image
work, metric, ours, threads, d = sys.argv[1:6]
torch.set_num_threads(int(threads))
names = sorted(os.listdir(d))
t = lambda p: torch.from_numpy(np.asarray(Image.open(p).convert("RGB"))).permute(2, 0, 1).float().div(255)[None]
if metric.startswith("clipiqa"):
    import clip
    import pyiqa.archs.clip_model as pc
    import pyiqa.archs.clipiqa_arch as pa
    m = pc.build_model(torch.load(f"{work}/RN50_sd.pt")).float().eval()
    pa.load = lambda *a, **k: m
    model = pa.CLIPIQA(model_type="clipiqa", pretrained=False).eval()
    if metric == "clipiqa@paper":
        ids = clip.tokenize(["Good photo.", "Bad photo."])
        mean, std = model.default_mean, model.default_std
        model = lambda x: m((x - mean) / std, ids, pos_embedding=True)[0].softmax(-1)[:, :1]
else:
    real = timm.create_model
    timm.create_model = lambda name, pretrained=False, **k: real(name, pretrained=False, **k)
    import pyiqa.archs.maniqa_arch as pm
    model = pm.MANIQA(train_dataset="koniq", scale=0.8, pretrained=False).eval()
    model.load_state_dict(torch.load(f"{work}/ckpt_koniq10k.pt"))
ref, start = {}, time.time()
with torch.no_grad():
    for f in names:
        ref[f[:-4]] = float(model(t(f"{d}/{f}"))[0, 0])
rate = len(names) / (time.time() - start)
got = {r["name"]: float(r[metric]) for r in csv.DictReader(open(f"{work}/{metric}.csv")) if r["name"] != "mean"}
err = max(abs(got[k] - ref[k]) for k in ref)
print(f"{metric:14s} rass-eval-iqa {ours} images/s (decode included); pyiqa {rate:.3f} images/s "
      f"({threads} threads, decode included); max |diff| {err:.2e}")
PY
done
