# The GPU path against the CPU float32 path (issue 14): rass-restore,
# rass-segment and rass-dreamclear on the tiny fixtures (tests/fixtures/nn/sd_tiny, ras_tiny, dreamclear_tiny) on
# CUDA in fp32, bf16 and fp16 (batch 1 and 2), compared with the CPU fp32 run
# of the same tool: latents (--latent-out), segmentation scores (--logits-out),
# and label maps, each within its dtype's tolerance below. Skips (77)
# where CUDA is not available (CI), or without python3 with numpy and PIL
# to compare the outputs. On a GPU machine with the tools only (scripts/build-gpu-host.sh):
#   RASS_BIN=build-gpu RASS_SOURCE_DIR=. bash tests/cli/test_gpu_parity.sh
# RASS_PARITY_DEVICE=cpu runs the same steps with the CPU in the GPU's place
# (bf16 only): how the script itself is tried where no GPU is (its bounds then
# hold by construction).
. "$(dirname "$0")/lib.sh"
R=$B/rass-restore
S=$B/rass-segment
[ -x "$R" ] && [ -x "$S" ] || { echo "skipped: rass-restore / rass-segment not built (no LibTorch)"; exit 77; }
python3 -c 'import numpy, PIL' 2>/dev/null || { echo "skipped: python3 with numpy and PIL is needed to compare the outputs"; exit 77; }
dev=${RASS_PARITY_DEVICE:-cuda}
N=$FIX/nn
SD=$N/sd_tiny
M=$N/ras_tiny
LQ=$N/restore_lq.png
SLQ=$N/ras_lq.png
if [ "$dev" != cpu ]; then
  "$R" -m "$SD" --device "$dev" --process-size 16 "$LQ" -o "$T/probe.png" -q 2>"$T/probe.err"
  rc=$?
  if [ "$rc" -ne 0 ]; then
    if grep -q "CUDA is not available" "$T/probe.err"; then
      echo "skipped: $(head -1 "$T/probe.err")"
      exit 77
    fi
    fail "probe run on $dev: exit $rc: $(head -c 400 "$T/probe.err")"
    finish
  fi
fi
dtypes="fp32 bf16 fp16"
[ "$dev" = cpu ] && dtypes="bf16"  # the CPU has no fp16 convolutions; fp32 would compare with itself

# err A B: "MAX MEAN": max |a - b| / max |b| and mean |a - b| / mean |b| (inf when a is not finite).
err() {
  python3 - "$1" "$2" <<'PY'
import sys
import numpy as np
a, b = np.load(sys.argv[1]).astype(np.float64), np.load(sys.argv[2]).astype(np.float64)
if a.shape != b.shape or not np.isfinite(a).all():
    print("inf inf")
else:
    d = np.abs(a - b)
    print(f"{d.max() / max(np.abs(b).max(), 1e-12):.4e} {d.mean() / max(np.abs(b).mean(), 1e-12):.4e}")
PY
}
# within "MAX MEAN" "BMAX BMEAN": both errors within their bounds.
within() {
  python3 -c 'import sys
e, b = sys.argv[1].split(), sys.argv[2].split()
sys.exit(0 if len(e) == len(b) == 2 and all(float(x) <= float(y) for x, y in zip(e, b)) else 1)' "$1" "$2"
}
# bound "MAX MEAN" SCALE FLOOR: SCALE * error + FLOOR, both numbers.
bound() { python3 -c 'import sys; print(" ".join("%.4e" % (float(sys.argv[2]) * float(x) + float(sys.argv[3])) for x in sys.argv[1].split()))' "$1" "$2" "$3"; }
# agree A.png B.png SHARE: the share of pixels with the same label is at least SHARE.
agree() {
  python3 - "$1" "$2" "$3" <<'PY'
import sys
import numpy as np
from PIL import Image
a, b = (np.asarray(Image.open(p)) for p in sys.argv[1:3])
share = (a == b).mean()
print(f"labels agree on {100 * share:.1f}% of pixels")
sys.exit(0 if share >= float(sys.argv[3]) else 1)
PY
}

# Tolerances. A random tiny network's outputs are not well conditioned, so
# the bound comes from the same computation rounded to bf16 on the CPU (the
# CPU's bf16 kernels against its fp32 ones, batch 1 and 2, the worse of the
# two): the GPU in bf16 may be 2x as far from the CPU fp32 result, plus 1% of
# the largest value. fp16 (10 mantissa bits, its VAE in fp32) and fp32 (TF32,
# also 10 bits, in cuDNN's convolutions: PyTorch's default) get half the bf16
# error plus 0.5%. Segmentation in bf16 gets 4x: on the CPU bf16 runs the
# projection and head in fp32 (no CPU bf16 grid_sample), on CUDA in bf16, so
# the CPU measure leaves the head's rounding out. Label maps: 85% of pixels
# agree in bf16, 97% in fp16/fp32. These are estimates until a GPU run.
declare -A scale=([bf16]=2 [fp16]=0.5 [fp32]=0.5) floor=([bf16]=0.01 [fp16]=0.005 [fp32]=0.005)
declare -A seg_scale=([bf16]=4 [fp16]=0.5 [fp32]=0.5)
declare -A share=([fp32]=0.97 [bf16]=0.85 [fp16]=0.97)
# worst "MAX MEAN" "MAX MEAN": the larger of each.
worst() {
  python3 -c 'import sys
a, b = sys.argv[1].split(), sys.argv[2].split()
if len(a) != 2 or len(b) != 2: sys.exit("worst: expected two numbers each")
print(" ".join("%.4e" % max(float(x), float(y)) for x, y in zip(a, b)))' "$1" "$2"
}

mirror() { python3 -c 'import sys; from PIL import Image, ImageOps; ImageOps.mirror(Image.open(sys.argv[1]).convert("RGB")).save(sys.argv[2])' "$1" "$2"; }

# against_cpu WHAT RUN OUT SCALES [LABELS]: RUN DEVICE DTYPE BATCH TAG writes
# $T/OUT_TAG/{a,b}.npy (and $T/LABELS_TAG/{a,b}.png); the CPU fp32 run is TAG
# cpu. The bound: CPU bf16 (batch 1 and 2) against CPU fp32, scaled by the
# dtype's entry of the array named SCALES, plus its floor.
against_cpu() {
  local what=$1 run=$2 out=$3 labels=${5:-} ref="0 0" b k dt lim e msg
  local -n sc=$4
  "$run" cpu fp32 1 cpu || return 0
  for b in 1 2; do
    "$run" cpu bf16 "$b" "cpubf16_$b" || continue
    for k in a b; do ref=$(worst "$ref" "$(err "$T/${out}_cpubf16_$b/$k.npy" "$T/${out}_cpu/$k.npy")"); done
  done
  echo "$what, CPU bf16 against CPU fp32: relative error (max, mean) $ref"
  for dt in $dtypes; do
    lim=$(bound "$ref" "${sc[$dt]}" "${floor[$dt]}")
    for b in 1 2; do
      "$run" "$dev" "$dt" "$b" "${dt}_$b" || continue
      for k in a b; do
        e=$(err "$T/${out}_${dt}_$b/$k.npy" "$T/${out}_cpu/$k.npy")
        within "$e" "$lim" && ok "$what $dt batch $b $k: error $e within $lim" ||
          fail "$what $dt batch $b $k: error $e beyond $lim"
        [ -n "$labels" ] || continue
        msg=$(agree "$T/${labels}_${dt}_$b/$k.png" "$T/${labels}_cpu/$k.png" "${share[$dt]}") &&
          ok "$what: labels $dt batch $b $k: $msg" || fail "$what: labels $dt batch $b $k below ${share[$dt]}: $msg"
      done
    done
  done
  # Every speed switch at once (NHWC weights, cuDNN autotuning, CUDA graphs,
  # two workers on streams of their own), with --timings (whose waits must
  # stay outside the recorded work): bf16, batch 2, the same bound (in the
  # CPU self-check the CUDA-only switches do nothing).
  lim=$(bound "$ref" "${sc[bf16]}" "${floor[bf16]}")
  fast=(--channels-last --cudnn-benchmark --cuda-graphs -j 2 --timings)
  "$run" "$dev" bf16 2 fast || { fast=(); return 0; }
  grep -q "could not record" "$T/.err" && fail "$what fast: a CUDA graph was not recorded: $(head -c 400 "$T/.err")"
  if [ "${dev%%:*}" = cuda ]; then
    grep -qF "(--cuda-graphs)" "$T/.err" || fail "$what fast: --timings shows no recorded stage: $(head -c 600 "$T/.err")"
    grep -qE "^  peak memory: [0-9.]+ GiB allocated on cuda(:[0-9]+)? \([0-9.]+ GiB reserved\), the process's resident set" "$T/.err" ||
      fail "$what fast: --timings gives no CUDA allocator peak: $(grep 'peak memory' "$T/.err")"
  else
    grep -qF "(all stages)" "$T/.err" || fail "$what fast: no --timings table: $(head -c 600 "$T/.err")"
  fi
  fast=()
  for k in a b; do
    e=$(err "$T/${out}_fast/$k.npy" "$T/${out}_cpu/$k.npy")
    within "$e" "$lim" && ok "$what fast switches bf16 batch 2 $k: error $e within $lim" ||
      fail "$what fast switches bf16 batch 2 $k: error $e beyond $lim"
  done
  # The schedule the tools run on a GPU without --timings: two lanes (batch
  # 1, two images: a group each), each on a stream of its own, reading and
  # writing beside the model, with CUDA graphs; the same bound.
  fast=(--channels-last --cuda-graphs -j 2)
  "$run" "$dev" bf16 1 lanes || { fast=(); return 0; }
  fast=()
  grep -q "could not record" "$T/.err" && fail "$what lanes: a CUDA graph was not recorded: $(head -c 400 "$T/.err")"
  for k in a b; do
    e=$(err "$T/${out}_lanes/$k.npy" "$T/${out}_cpu/$k.npy")
    within "$e" "$lim" && ok "$what two lanes with graphs bf16 batch 1 $k: error $e within $lim" ||
      fail "$what two lanes with graphs bf16 batch 1 $k: error $e beyond $lim"
  done
}
fast=()

# Two different images (b is a's mirror image), so a mix-up of batch rows shows.
mkdir -p "$T/in" "$T/sin"
cp "$LQ" "$T/in/a.png" && mirror "$LQ" "$T/in/b.png"
cp "$SLQ" "$T/sin/a.png" && mirror "$SLQ" "$T/sin/b.png"
# --method scr: t 1, so x0 ~ z - eps (no 1/sqrt(a_t) amplification); sampled
# latents: the keyed draws are made on the CPU, the same for every device.
# The runs under test take the one-step upsamplers at every size
# (RASS_UPSAMPLE_PHASES=force: these models' upsamplers are far under the
# 1024 source pixels where they start by default), the CPU fp32 reference
# diffusers' two steps: so the bounds also hold the phases to the reference.
phases() { if [ "$1" = cpu ] && [ "$2" = fp32 ]; then echo 0; else echo force; fi; }
run_restore() {  # DEVICE DTYPE BATCH TAG
  expect_exit 0 "restore $1 $2 batch $3" -- env RASS_UPSAMPLE_PHASES="$(phases "$1" "$2")" "$R" -m "$SD" --method scr --process-size 16 --device "$1" \
    --dtype "$2" --batch "$3" "${fast[@]}" "$T/in" -O "$T/r_$4" --latent-out "$T/rl_$4" -q
}
run_segment() {  # DEVICE DTYPE BATCH TAG
  expect_exit 0 "segment $1 $2 batch $3" -- env RASS_UPSAMPLE_PHASES="$(phases "$1" "$2")" "$S" -m "$M" --device "$1" --dtype "$2" --batch "$3" "${fast[@]}" \
    "$T/sin" -O "$T/s_$4" --logits-out "$T/sl_$4" -q
}
against_cpu "restore latent" run_restore rl scale
against_cpu "segment scores" run_segment sl seg_scale s

# rass-dreamclear (tests/fixtures/nn/dreamclear_tiny): one sampling step
# (t 0: no 1/sqrt(a_t) amplification) on two images, a's tiles and b's
# mirror; on CUDA the DiT runs float32 weights under autocast, SwinIR and the
# VAE float32. The output images against the CPU fp32 run, bounded as above
# by CPU bf16 against CPU fp32 (its DiT's weights cast).
DC=$B/rass-dreamclear
if [ -x "$DC" ]; then
  mkdir -p "$T/dcin"
  cp "$N/dreamclear_lq.png" "$T/dcin/a.png" && mirror "$N/dreamclear_lq.png" "$T/dcin/b.png"
  run_dc() {  # DEVICE DTYPE TAG
    expect_exit 0 "dreamclear $1 $2" -- "$DC" -m "$N/dreamclear_tiny" --min-size 128 --steps 1 --tile 16 --tile-overlap 4 \
      --caption "$N/dreamclear_caption.npz" --device "$1" --dtype "$2" "$T/dcin" -O "$T/dc_$3" -q || return 1
    python3 - "$T/dc_$3" <<'PY'
import sys
import numpy as np
from PIL import Image
for k in "ab":
    np.save(f"{sys.argv[1]}/{k}.npy", np.asarray(Image.open(f"{sys.argv[1]}/{k}.png"), dtype=np.float64))
PY
  }
  if run_dc cpu fp32 cpu && run_dc cpu bf16 cpubf16; then
    dref="0 0"
    for k in a b; do dref=$(worst "$dref" "$(err "$T/dc_cpubf16/$k.npy" "$T/dc_cpu/$k.npy")"); done
    echo "dreamclear images, CPU bf16 against CPU fp32: relative error (max, mean) $dref"
    for dt in $dtypes; do
      lim=$(bound "$dref" "${scale[$dt]}" "${floor[$dt]}")
      run_dc "$dev" "$dt" "$dt" || continue
      for k in a b; do
        e=$(err "$T/dc_$dt/$k.npy" "$T/dc_cpu/$k.npy")
        within "$e" "$lim" && ok "dreamclear $dt $k: error $e within $lim" || fail "dreamclear $dt $k: error $e beyond $lim"
      done
    done
  fi
fi

# The tiled VAE on the device (448x320 px: encoder and decoder tiled): the
# waiting tiles' activations in host memory (--vae-offload on, auto's choice
# on a device short of room) give the same bytes as kept on the device, and a
# lower decoder tensor peak (--timings: the allocator's on CUDA).
declare -A vpeak
for o in on off; do
  expect_exit 0 "tiled VAE on $dev, --vae-offload $o" -- "$R" -m "$SD" --device "$dev" --dtype bf16 --upscale 4 \
    --process-size 320 --tile --tile-size 8 --tile-overlap 4 --vae-tile 64,8 --vae-offload $o --vae-mode --timings -q \
    "$LQ" -o "$T/vt-$o.png" --latent-out "$T/vt-$o.npy"
  vpeak["$o"]=$(awk '$1 == "vae" && $2 == "decoder" {print $NF}' "$T/.err")
done
cmp -s "$T/vt-on.png" "$T/vt-off.png" && ok "tiled VAE on $dev: --vae-offload on and off give the same bytes" ||
  fail "tiled VAE on $dev: --vae-offload on changed the output"
awk -v a="${vpeak[on]:-0}" -v b="${vpeak[off]:-0}" 'BEGIN {exit !(a > 0 && a < b)}' &&
  ok "tiled VAE on $dev: decoder tensor peak ${vpeak[off]} -> ${vpeak[on]} GiB" ||
  fail "tiled VAE on $dev: decoder tensor peak with --vae-offload on ${vpeak[on]:-?} GiB, off ${vpeak[off]:-?}"
finish
