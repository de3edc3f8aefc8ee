#!/usr/bin/env bash
# GPU benchmark (issue 14): rass-restore and rass-segment against the same
# computation in PyTorch eager (scripts/bench_restore_torch.py and
# scripts/bench_segment_torch.py: diffusers / transformers modules, SDPA), in
# one run on one GPU, with SD 2.1-base-sized random weights (bf16 files).
#
#   scripts/bench-gpu.sh [--bin DIR] [--python PY] [--out FILE] [--runs R]
#                        [--device cuda] [--preset sd21-base] [--size 512] [--big 2048]
#                        [--dtype bf16] [--skip-torch] [--budget SECONDS] [--only REGEX]
#
# Rows: restore and segment at SIZE x SIZE with --batch 1 and 8, and batch 8
# with --channels-last --cudnn-benchmark ("fast"), also with -j 2, restore's
# batch 8 with diffusers' two-step upsamplers ("two-step"), with LibTorch's
# GroupNorm and SiLU in place of the fused kernels ("unfused"), and with
# --cuda-graphs (its rate from two runs, tool_rate_two); restore at
# BIG x BIG with --tile (one image; also with --batch 8, its latent tiles 8
# per UNet call; the untiled image too, to measure seams);
# segment at BIG x BIG with --no-resize (512 px windows, --batch 8); then
# each tool's batch 8 once more with --timings, its table of seconds per
# stage in the report (where the time goes; not a table row), and once under
# RASS_TRACE beside its PyTorch reference's trace (NAME-trace: kernel time
# by family, scripts/trace_summary.py; in the report). Columns:
# images/s of the tool and of PyTorch eager, their ratio, the GPU memory the
# process took (nvidia-smi, sampled every 100 ms: context, caching allocator
# and all) and the share of the bf16 peak that the network arithmetic reached
# (MACs per image from the issue: UNet 210 G, VAE encoder 566 G, decoder
# 1.27 T at 512x512, scaled by pixels; H200 dense bf16 peak 790 TFLOP/s as
# measured for large matrix products; the segment head is not counted).
#
# Timing: the tools run as users run them (PNG in and out, --vae-mode
# --color-fix none, models loaded once per run): per image = the time between
# the first and the last output file / (images - batch), so loading and the
# first batch's warm-up are not in it. The PyTorch side times its calls alone
# (no image files), median of R runs after one warm-up.
#
# Needs: the tools (DIR: a build folder, or .gpu-host/bin from
# `scripts/build-gpu-host.sh pack --bin build-cuda` with `eval "$(scripts/build-gpu-host.sh env)"`),
# python3 with torch, numpy, PIL, diffusers, transformers (and for the segment
# reference fvcore and MASK2FORMER_SRC, a checkout of facebookresearch/Mask2Former;
# without it the segment reference rows say so). --device cpu --preset tiny4
# --size 64 --big 256 --runs 1 tries the whole script in minutes on a CPU.
# Everything is written under a temporary folder (about 6 GB with sd21-base).
# The report grows in FILE (--out) row by row; --budget S skips the rows
# that would start after S seconds (the table is still written), so a run
# under a time limit keeps what it measured. --only REGEX runs only the rows
# whose names match (grep -E; PyTorch rows as "torch NAME", stage tables as
# NAME-stages), e.g. --only 'stages|2048|graphs' for those a first run skipped. The rows most wanted come first:
# batch 1 and 8 of each tool with their PyTorch rows, then the switches, then
# the big image.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
bin=${BIN:-$here/../build}
python=${PYTHON:-python3}
out=""
runs=4
device=cuda
preset=sd21-base
size=512
big=2048
dtype=bf16
skip_torch=0
budget=0  # seconds; 0: no limit
only=""   # grep -E pattern of the rows to run; empty: all
started=$(date +%s)
while [ $# -gt 0 ]; do
  case $1 in
    --bin) bin=$2; shift 2 ;;
    --python) python=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    --runs) runs=$2; shift 2 ;;
    --device) device=$2; shift 2 ;;
    --preset) preset=$2; shift 2 ;;
    --size) size=$2; shift 2 ;;
    --big) big=$2; shift 2 ;;
    --dtype) dtype=$2; shift 2 ;;
    --skip-torch) skip_torch=1; shift ;;
    --budget) budget=$2; shift 2 ;;
    --only) only=$2; shift 2 ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "bench-gpu: unknown option $1" >&2; exit 2 ;;
  esac
done
[ "$runs" -ge 1 ] 2>/dev/null || { echo "bench-gpu: --runs must be a positive integer" >&2; exit 2; }
[ "$budget" -ge 0 ] 2>/dev/null || { echo "bench-gpu: --budget must be a number of seconds" >&2; exit 2; }
if [ -n "$only" ]; then
  rc=0
  grep -qE -- "$only" <<<"" 2>/dev/null || rc=$?
  [ "$rc" -le 1 ] || { echo "bench-gpu: --only '$only' is not a grep -E pattern" >&2; exit 2; }
fi
for t in rass-restore rass-segment rass-model; do
  [ -x "$bin/$t" ] || { echo "bench-gpu: $bin/$t not built (--bin DIR)" >&2; exit 1; }
done
"$python" -c 'import numpy, PIL' 2>/dev/null || { echo "bench-gpu: $python lacks numpy or PIL" >&2; exit 1; }
gpu=0
if [ "${device%%:*}" = cuda ]; then
  command -v nvidia-smi >/dev/null || { echo "bench-gpu: nvidia-smi not found (--device cpu for a dry run)" >&2; exit 1; }
  gpu=1
  gpu_index=${device#cuda}
  gpu_index=${gpu_index#:}
  gpu_index=${gpu_index:-0}
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/bench-gpu.XXXXXX")
monitor_pid=""
trap '[ -n "$monitor_pid" ] && kill "$monitor_pid" 2>/dev/null; rm -rf "$work"' EXIT
# The report, row by row: in --out's file itself, so a run killed at a time
# limit leaves what it measured.
report=${out:-$work/report.txt}
: >"$report" || { echo "bench-gpu: cannot write $report" >&2; exit 1; }
log() { echo "$*" | tee -a "$report" >&2; }
# Whether a row may start: false (and noted) once --budget is spent.
in_budget() {
  if [ -n "$only" ] && ! grep -qE -- "$only" <<<"$1"; then return 1; fi
  [ "$budget" = 0 ] && return 0
  [ $(($(date +%s) - started)) -lt "$budget" ] && return 0
  log "$1: skipped (--budget ${budget} s spent)"
  return 1
}
py() { "$python" -c "$@"; }

# ---- the machine ----------------------------------------------------------
log "# scripts/bench-gpu.sh, $(date -u '+%Y-%m-%d %H:%M UTC')"
if [ "$gpu" = 1 ]; then
  log "gpu: $(nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader -i "$gpu_index" | head -1)"
fi
log "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(nproc) cores"
log "torch (reference): $(py 'import torch; print(torch.__version__, "cuda", torch.version.cuda, "cudnn", torch.backends.cudnn.version())' 2>/dev/null || echo none)"
log "diffusers $(py 'import diffusers; print(diffusers.__version__)' 2>/dev/null || echo none), transformers $(py 'import transformers; print(transformers.__version__)' 2>/dev/null || echo none)"
log "rass: $("$bin/rass-restore" --version) from $bin$( [ -f "$bin/BUILD_INFO" ] && echo ", $(head -1 "$bin/BUILD_INFO")")"
log "setting: preset $preset, $dtype, device $device, size $size, big $big, runs $runs"

# ---- models ------------------------------------------------------------------
sd=$work/sd
seg=$work/seg
s0=$(date +%s)
"$bin/rass-model" init "$sd" --preset "$preset" --seed 0 --dtype "$dtype" --quiet
have_seg_ref=0
mkdir -p "$seg"
for c in unet vae text_encoder tokenizer scheduler; do ln -s "$sd/$c" "$seg/$c"; done
if [ "$skip_torch" = 0 ] && [ -n "${MASK2FORMER_SRC:-}" ] &&
   "$python" "$here/bench_segment_torch.py" --model "$seg" --make-head >"$work/make-head.log" 2>&1; then
  have_seg_ref=1
else
  # No Mask2Former checkout: the segmentation folder comes from rass-model
  # (same architecture and sizes; random weights of its own).
  [ "$skip_torch" = 1 ] || [ -z "${MASK2FORMER_SRC:-}" ] || { cat "$work/make-head.log" >&2; log "note: the segment reference's head could not be made (log above); segment reference rows skipped"; }
  rm -rf "$seg"
  seg_preset=tiny-seg
  [ "$preset" = sd21-base ] && seg_preset=sd21-base-seg
  "$bin/rass-model" init "$seg" --preset "$seg_preset" --seed 0 --dtype "$dtype" --quiet
fi
log "models: $(du -sh "$sd" | cut -f1) ($(($(date +%s) - s0)) s to write)"

# ---- inputs ------------------------------------------------------------------
n_small=$((8 * (runs + 1)))  # whole batches of 8: the first is the warm-up
"$python" - "$work/in" "$size" "$big" "$n_small" <<'PY'
import os, sys
import numpy as np
from PIL import Image
d, size, big, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
rng = np.random.default_rng(0)
def img(s):  # a gradient under noise: smooth and textured parts
    y, x = np.mgrid[0:s, 0:s] * (512.0 / s)
    return np.clip(np.stack([x / 2, y / 2, (x + y) / 4], -1) + rng.normal(0, 20, (s, s, 3)), 0, 255).astype(np.uint8)
for sub, s, k in (("small", size, n), ("small2", size, 2 * n), ("big", big, 2), ("big1", big, 1), ("big9", big, 9)):
    os.makedirs(os.path.join(d, sub), exist_ok=True)
    first = os.path.join(d, sub, "img000.png")
    Image.fromarray(img(s)).save(first)
    for i in range(1, k):
        os.link(first, os.path.join(d, sub, f"img{i:03d}.png"))
PY

# ---- measuring -----------------------------------------------------------------
# GPU memory in use, sampled every 100 ms while a command runs; the peak over
# what was in use before it (MiB).
mem_start() {
  [ "$gpu" = 1 ] || return 0
  base_mib=$(nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits -i "$gpu_index" | head -1)
  nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits -i "$gpu_index" -lms 100 >"$work/mem.log" 2>/dev/null &
  monitor_pid=$!
}
mem_stop() {  # prints the peak in GiB, or - without a GPU
  if [ "$gpu" = 0 ]; then echo -; return; fi
  kill "$monitor_pid" 2>/dev/null; wait "$monitor_pid" 2>/dev/null || true
  monitor_pid=""
  py 'import sys
v = [int(l.split()[0]) for l in open(sys.argv[1]) if l.strip() and l.split()[0].isdigit()]
print("%.2f" % ((max(v) - int(sys.argv[2])) / 1024) if v else "-")' "$work/mem.log" "${base_mib:-0}"
}

# tool_rate NAME IMAGES BATCH -- command...: images/s from the output files'
# times: from the last file of the first JOBS x BATCH images (loading and the
# first groups in flight) to the last file, over the images written between.
declare -A rate mem
tool_rate() {
  local name=$1 n=$2 batch=$3 outdir=$work/out-$1 jobs=1
  shift 4
  rate[$name]=-
  mem[$name]=-
  in_budget "$name" || return 0
  local a
  for a in "$@"; do [ "$a" = "-j2" ] && jobs=2; done
  rm -rf "$outdir"
  mem_start
  local s e
  s=$(date +%s.%N)
  "$@" -O "$outdir" -q || { mem_stop >/dev/null; log "$name: the tool failed"; rate[$name]=-; mem[$name]=-; return 0; }
  e=$(date +%s.%N)
  mem[$name]=$(mem_stop)
  local got
  got=$(find "$outdir" -name '*.png' | wc -l)
  [ "$got" -eq "$n" ] || { log "$name: wrote $got images, not $n"; exit 1; }
  rate[$name]=$(find "$outdir" -name '*.png' -printf '%T@\n' | py 'import sys
t = sorted(float(l) for l in sys.stdin)
n, first = len(t), int(sys.argv[1]) * int(sys.argv[2])
print("%.3f" % ((n - first) / (t[-1] - t[first - 1])) if n > first and t[-1] > t[first - 1] else "-")' "$batch" "$jobs")
  log "$name: ${rate[$name]} images/s, peak GPU memory ${mem[$name]} GiB ($(py "print('%.1f' % ($e - $s))") s with loading)"
}

# tool_rate_two NAME DIR1 N1 DIR2 N2 -- command...: images per second from
# two runs, on the N1 images of DIR1 and on the N2 of DIR2: (N2 - N1) over
# the difference of their times, so loading, warm-up, CUDA graph recordings
# and the last group's drain cancel. For tiled images (their item groups
# write every output at the end of the group) and for the --cuda-graphs
# rows (with -j 2 one worker records its graph while the other already
# replays; tool_rate's file times would count that recording as steady).
tool_rate_two() {
  local name=$1 dir1=$2 n1=$3 dir2=$4 n2=$5 s1 e1 s2 e2
  shift 6
  rate[$name]=-
  mem[$name]=-
  in_budget "$name" || return 0
  rm -rf "$work/out-$name" "$work/out-$name.1"
  s1=$(date +%s.%N)
  "$@" "$dir1" -O "$work/out-$name.1" -q || { log "$name: the tool failed"; return 0; }
  e1=$(date +%s.%N)
  mem_start
  s2=$(date +%s.%N)
  "$@" "$dir2" -O "$work/out-$name" -q || { mem_stop >/dev/null; log "$name: the tool failed"; return 0; }
  e2=$(date +%s.%N)
  mem[$name]=$(mem_stop)
  rate[$name]=$(py 'import sys
n = int(sys.argv[6]) - int(sys.argv[5])
d = (float(sys.argv[4]) - float(sys.argv[3])) - (float(sys.argv[2]) - float(sys.argv[1]))
print("%.3f" % (n / d) if d > 0 else "-")' "$s1" "$e1" "$s2" "$e2" "$n1" "$n2")
  log "$name: ${rate[$name]} images/s, peak GPU memory ${mem[$name]} GiB ($n1 images $(py "print('%.1f' % ($e1 - $s1))") s, $n2 images $(py "print('%.1f' % ($e2 - $s2))") s with loading; the difference)"
}

declare -A ref refmem
torch_rate() {  # NAME SCRIPT args...
  local name=$1 script=$2
  shift 2
  ref[$name]=-
  refmem[$name]=-
  [ "$skip_torch" = 0 ] || return 0
  in_budget "torch $name" || return 0
  mem_start
  local line
  if line=$("$python" "$here/$script" --device "$device" --dtype "$dtype" --runs "$runs" --json "$@" 2>"$work/ref.err" | tail -1); then
    refmem[$name]=$(mem_stop)
    ref[$name]=$(py 'import json, sys; print("%.3f" % json.loads(sys.argv[1])["images_per_second"])' "$line")
    log "torch $name: ${ref[$name]} images/s, peak GPU memory ${refmem[$name]} GiB; $line"
  else
    mem_stop >/dev/null
    tail -5 "$work/ref.err" >&2
    log "torch $name: failed (see above)"
  fi
}

# --process-size 0: no small-image rule, so both sides process SIZE x SIZE.
common=(--device "$device" --dtype "$dtype" --vae-mode)
rcommon=(--method osediff --color-fix none --process-size 0)
# The SIZE rows run whole, as their PyTorch reference does (rass-restore
# tiles above 768 px by default; the BIG rows ask --tile).
whole=(--no-tile)
for b in 1 8; do
  tool_rate "restore-$size-b$b" "$n_small" "$b" -- "$bin/rass-restore" -m "$sd" "${common[@]}" "${rcommon[@]}" "${whole[@]}" \
    --batch "$b" "$work/in/small"
done
torch_rate "restore-$size-b1" bench_restore_torch.py --model "$sd" --size "$size" --batch 1
torch_rate "restore-$size-b8" bench_restore_torch.py --model "$sd" --size "$size" --batch 8
for b in 1 8; do
  # --no-resize: SIZE x SIZE as it is (the released shortest-edge resize to 512 is a no-op at 512).
  tool_rate "segment-$size-b$b" "$n_small" "$b" -- "$bin/rass-segment" -m "$seg" "${common[@]}" --no-resize --batch "$b" \
    "$work/in/small"
done
if [ "$have_seg_ref" = 1 ]; then
  torch_rate "segment-$size-b1" bench_segment_torch.py --model "$seg" --size "$size" --batch 1
  torch_rate "segment-$size-b8" bench_segment_torch.py --model "$seg" --size "$size" --batch 8
fi
# The speed switches, each measured: --channels-last and --cudnn-benchmark
# ("fast"), then with two items in flight (-j 2: one group's PNG decoding and
# writing overlap the other's GPU work, each worker on a CUDA stream of its
# own), then the same with --cuda-graphs (each batch shape recorded once).
for v in fast fast-j2; do
  fast=(--channels-last --cudnn-benchmark)
  jobs=1
  [ "$v" != fast ] && jobs=2
  tool_rate "restore-$size-b8-$v" "$n_small" 8 -- "$bin/rass-restore" -m "$sd" "${common[@]}" "${rcommon[@]}" "${whole[@]}" \
    "${fast[@]}" "-j$jobs" --batch 8 "$work/in/small"
  tool_rate "segment-$size-b8-$v" "$n_small" 8 -- "$bin/rass-segment" -m "$seg" "${common[@]}" --no-resize \
    "${fast[@]}" "-j$jobs" --batch 8 "$work/in/small"
done
# The upsamplers as diffusers computes them (nearest x2, then the 3x3
# convolution; RASS_UPSAMPLE_PHASES=0) against the default four 2x2 phase
# convolutions (lib/rass/nn/upsample_conv.hpp): what the phases are worth here.
tool_rate "restore-$size-b8-two-step" "$n_small" 8 -- env RASS_UPSAMPLE_PHASES=0 "$bin/rass-restore" -m "$sd" "${common[@]}" \
  "${rcommon[@]}" "${whole[@]}" --batch 8 "$work/in/small"
# GroupNorm then SiLU as LibTorch runs them (RASS_FUSED_NORM=0: a norm, then
# a SiLU, five passes over each activation) against the fused kernels
# (lib/rass/nn/group_norm_kernel.hpp: three): what the fusion is worth here.
tool_rate "restore-$size-b8-unfused" "$n_small" 8 -- env RASS_FUSED_NORM=0 "$bin/rass-restore" -m "$sd" "${common[@]}" \
  "${rcommon[@]}" "${whole[@]}" --batch 8 "$work/in/small"
# With graphs: the steady state from two runs (tool_rate_two).
fast=(--channels-last --cudnn-benchmark --cuda-graphs)
tool_rate_two "restore-$size-b8-fast-j2-graphs" "$work/in/small" "$n_small" "$work/in/small2" $((2 * n_small)) -- "$bin/rass-restore" -m "$sd" "${common[@]}" "${rcommon[@]}" \
  "${whole[@]}" "${fast[@]}" -j2 --batch 8
tool_rate_two "segment-$size-b8-fast-j2-graphs" "$work/in/small" "$n_small" "$work/in/small2" $((2 * n_small)) -- "$bin/rass-segment" -m "$seg" "${common[@]}" --no-resize \
  "${fast[@]}" -j2 --batch 8
# The big image: the first is loading and warm-up, the second is timed.
tool_rate "restore-$big-tiled" 2 1 -- "$bin/rass-restore" -m "$sd" "${common[@]}" "${rcommon[@]}" \
  --size-policy pad --tile "$work/in/big"
# The same with its latent tiles 8 per UNet call (--batch 8).
tool_rate_two "restore-$big-tiled-b8" "$work/in/big1" 1 "$work/in/big" 2 -- "$bin/rass-restore" -m "$sd" "${common[@]}" "${rcommon[@]}" \
  --size-policy pad --tile --batch 8
# Segment: --batch 8 takes 8 items per group, so 9 images: the second group
# (one image, 16 windows in two backbone calls) is the timed one.
tool_rate "segment-$big-windows" 9 8 -- "$bin/rass-segment" -m "$seg" "${common[@]}" --no-resize --window 512 \
  --batch 8 "$work/in/big9"
# Where the time goes: batch 8 with --timings (each stage waits for the
# device, so these runs are slower than the rows above; the first batch's
# warm-up is in them; not in the table).
stage_table() {  # NAME -- command...
  local name=$1
  shift 2
  in_budget "$name" || return 0
  if "$@" --timings -q -O "$work/out-$name" 2>"$work/$name.err"; then
    log "$name:"
    grep -E '^(rass-|  )' "$work/$name.err" | tee -a "$report" >&2
  else
    log "$name: the tool failed ($(tail -1 "$work/$name.err"))"
  fi
}
stage_table "restore-$size-b8-stages" -- "$bin/rass-restore" -m "$sd" "${common[@]}" "${rcommon[@]}" "${whole[@]}" --batch 8 "$work/in/small"
stage_table "segment-$size-b8-stages" -- "$bin/rass-segment" -m "$seg" "${common[@]}" --no-resize --batch 8 "$work/in/small"
# The tiled big image too: its table ends with the caching allocator's peak
# (allocated and reserved), the number behind the 8 GiB target beside
# nvidia-smi's, and each stage's row with its own allocated peak. The VAE's
# waiting tiles wait on the device while it has room (--vae-offload auto:
# on an 80 GB card, all of them); the second table sends every waiting tile
# to host memory (on, as OSEDiff): the least device memory, and what its
# copies cost.
stage_table "restore-$big-tiled-stages" -- "$bin/rass-restore" -m "$sd" "${common[@]}" "${rcommon[@]}" \
  --size-policy pad --tile "$work/in/big1"
stage_table "restore-$big-tiled-stages-host" -- "$bin/rass-restore" -m "$sd" "${common[@]}" "${rcommon[@]}" \
  --size-policy pad --tile --vae-offload on "$work/in/big1"

# Traces (NAME-trace): each tool's batch 8 under RASS_TRACE and its PyTorch
# reference's one call under torch.profiler (--trace), set side by side per
# image by scripts/trace_summary.py: GPU time by kernel family, the longest
# kernels, kernel counts. Where the ratio above comes from, kernel by kernel
# (profiling slows both sides; not a table row). The traces stay in the
# work folder; the summary goes into the report.
trace_compare() {  # NAME -- rass command...; the reference: the array trace_ref (script and its words; empty: none)
  local name=$1 t_rass=$work/$1.rass.json t_torch=$work/$1.torch.json
  shift 2
  in_budget "$name" || return 0
  if ! RASS_TRACE=$t_rass "$@" -q -O "$work/out-$name" 2>"$work/$name.err"; then
    log "$name: the tool failed ($(tail -1 "$work/$name.err"))"
    return 0
  fi
  # Its first model call (8 images: set-up, warm-up) is left out (--skip-first-call).
  local n_rass traces=("$t_rass") images labels=(rass)
  n_rass=$(($(find "$work/out-$name" -name '*.png' | wc -l) - 8))
  [ "$n_rass" -gt 0 ] || { log "$name: too few images for a steady state"; return 0; }
  images=("$n_rass")
  if [ "$skip_torch" = 1 ] || [ "${#trace_ref[@]}" = 0 ]; then
    :  # rass's side alone
  elif "$python" "$here/${trace_ref[0]}" "${trace_ref[@]:1}" --device "$device" --dtype "$dtype" --runs 1 \
       --trace "$t_torch" >"$work/$name.torch.log" 2>&1; then
    traces+=("$t_torch")
    images+=(8)
    labels+=(torch)
  else
    log "$name: the PyTorch trace failed ($(tail -1 "$work/$name.torch.log"))"
  fi
  # PyTorch's traced call is one batch of 8 after its warm-up, its part timings' synchronisations and its
  # prompt encoding included (rass keeps its prompt embedding: not in its calls after the first).
  log "$name (rass: $n_rass images after its first call; torch: one call of 8 after its warm-up):"
  "$python" "$here/trace_summary.py" "${traces[@]}" --images "${images[@]}" --labels "${labels[@]}" \
    --skip-first-call --top 15 2>&1 | tee -a "$report" >&2 || log "$name: trace_summary.py failed"
}
trace_ref=(bench_restore_torch.py --model "$sd" --size "$size" --batch 8)
trace_compare "restore-$size-b8-trace" -- \
  "$bin/rass-restore" -m "$sd" "${common[@]}" "${rcommon[@]}" "${whole[@]}" --batch 8 "$work/in/small"
trace_ref=()
[ "$have_seg_ref" = 1 ] && trace_ref=(bench_segment_torch.py --model "$seg" --size "$size" --batch 8)
trace_compare "segment-$size-b8-trace" -- \
  "$bin/rass-segment" -m "$seg" "${common[@]}" --no-resize --batch 8 "$work/in/small"

# Seams: the tiled restore against one pass over the whole image (where it fits).
if [ -n "$only" ] && ! grep -qE -- "$only" <<<"restore-$big-seams"; then
  :  # not selected
elif [ ! -f "$work/out-restore-$big-tiled/img000.png" ]; then
  log "seams: no tiled output to compare"
elif in_budget "restore-$big-seams"; then
  # The tiled output alone first (no second pass needed), then against one
  # pass over the whole image (scripts/seams.py).
  log "seams ($big, tiled output alone): $("$python" "$here/seams.py" "$work/out-restore-$big-tiled/img000.png")"
  "$bin/rass-restore" -m "$sd" "${common[@]}" "${rcommon[@]}" --size-policy pad --no-tile \
    "$work/in/big/img000.png" -o "$work/untiled.png" -q 2>"$work/untiled.err" &&
    log "seams ($big, tiled vs untiled): $("$python" "$here/seams.py" "$work/out-restore-$big-tiled/img000.png" "$work/untiled.png")" ||
    log "seams: the untiled $big pass failed ($(tail -1 "$work/untiled.err"))"
fi

torch_rate "restore-$big-tiled" bench_restore_torch.py --model "$sd" --size "$big" --batch 1 --tile

# ---- the table -------------------------------------------------------------------
{
  echo
  printf '| %-30s | %10s | %10s | %7s | %9s | %9s | %9s |\n' case "rass img/s" "torch img/s" ratio "rass GiB" "torch GiB" "bf16 peak"
  echo "|--------------------------------|-----------:|-----------:|--------:|----------:|----------:|----------:|"
  for name in "restore-$size-b1" "restore-$size-b8" "restore-$size-b8-two-step" "restore-$size-b8-unfused" \
              "restore-$size-b8-fast" "restore-$size-b8-fast-j2" \
              "restore-$size-b8-fast-j2-graphs" "segment-$size-b1" "segment-$size-b8" "segment-$size-b8-fast" \
              "segment-$size-b8-fast-j2" "segment-$size-b8-fast-j2-graphs" \
              "restore-$big-tiled" "restore-$big-tiled-b8" "segment-$big-windows"; do
    r=${rate[$name]:--}
    case $name in  # the switches' rows against the same PyTorch row
      *-tiled-b8) base=${name%-b8} ;;
      *-fast*) base=${name%-fast*} ;;
      *-two-step) base=${name%-two-step} ;;
      *-unfused) base=${name%-unfused} ;;
      *) base=$name ;;
    esac
    t=${ref[$base]:--}
    py 'import sys
name, r, t, rm, tm, size, big = sys.argv[1:8]
ratio = "%.2f" % (float(r) / float(t)) if r != "-" and t != "-" and float(t) > 0 else "-"
# GMACs per image at 512x512 (issue 14): UNet 210, VAE encoder 566, decoder 1270.
px = (int(big) if name.split("-")[1] == big else int(size)) ** 2 / 512 ** 2
macs = (210 + 566 + (1270 if name.startswith("restore") else 0)) * 1e9 * px
share = "%.1f%%" % (100 * float(r) * 2 * macs / 790e12) if r != "-" else "-"
print("| %-30s | %10s | %10s | %7s | %9s | %9s | %9s |" % (name, r, t, ratio, rm, tm, share))' \
      "$name" "$r" "$t" "${mem[$name]:--}" "${refmem[$name]:--}" "$size" "$big"
  done
} | tee -a "$report"

