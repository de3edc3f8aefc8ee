# rass-eval-iqa -m musiq, musiq-ava (no reference: one image or folder):
# values equal to pyiqa's MUSIQ on the small random models of
# tests/nn/make_iqa_musiq_fixture.py (expected values printed by that script,
# the reference run in float64), batching of same-size images, and refusals
# (missing or wrong weight file, an image too elongated for the 224 scale).
. "$(dirname "$0")/lib.sh"
E=$B/rass-eval-iqa
Q=$FIX/iqa

"$E" -m musiq "$Q/musiq_0.png" >"$T/.out" 2>"$T/.err"
if grep -q "network layer" "$T/.err"; then
  expect_exit 2 "no network layer: musiq refused" -- "$E" -m musiq "$Q/musiq_0.png"
  finish
fi

mkdir -p "$T/w" "$T/img"
expect_exit 3 "missing weight file" -- "$E" -m musiq --weights "$T/w" "$Q/musiq_0.png"
stderr_has "$T/w/musiq_koniq.safetensors: missing" "missing file named"
stderr_has "convert_iqa_musiq.py" "missing file names the converter"
cp "$FIX/nn/musiq_tiny_ava.safetensors" "$T/w/musiq_koniq.safetensors"
expect_exit 3 "a 10-bin file as the KonIQ head" -- "$E" -m musiq --weights "$T/w" "$Q/musiq_0.png"
stderr_has "10-output head; musiq expects 1" "wrong variant named"
cp "$FIX/nn/musiq_tiny.safetensors" "$T/w/musiq_koniq.safetensors"
cp "$FIX/nn/musiq_tiny_ava.safetensors" "$T/w/musiq_ava.safetensors"

for k in 0 2 6 batch; do cp "$Q/musiq_$k.png" "$T/img/"; done
# A bad RASS_FUSED_NORM is a usage error before any image (read at the first
# CUDA GroupNorm, it failed each item on a GPU).
expect_exit 2 "RASS_FUSED_NORM=on" -- env RASS_FUSED_NORM=on RASS_IQA_WEIGHTS="$T/w" "$E" -m musiq "$T/img"
stderr_has "RASS_FUSED_NORM=on: expected 0" "the bad switch value is named"
check() {  # check FILE NAME METRIC VALUE
  local got
  got=$(grep -A6 "\"name\": \"$2\"" "$1" | grep "\"$3\":" | head -1 | sed 's/.*: //; s/,//')
  awk -v a="$got" -v b="$4" 'BEGIN { d = a - b; if (d < 0) d = -d; exit !(a != "" && d < 1e-5) }' ||
    fail "$2 $3 = '$got', reference $4"
}
values() {
  check "$1" musiq_0 musiq 0.739993946; check "$1" musiq_0 musiq-ava 7.01915679
  check "$1" musiq_2 musiq 1.10815807; check "$1" musiq_2 musiq-ava 7.41630835
  check "$1" musiq_6 musiq 0.873074898; check "$1" musiq_6 musiq-ava 7.28590356
  check "$1" musiq_batch musiq 1.00175352
}
expect_exit 0 "musiq, musiq-ava one image at a time" -- \
  env RASS_IQA_WEIGHTS="$T/w" "$E" -m musiq,musiq-ava "$T/img" --json -j 1
values "$T/.out"
grep -q '"musiq": "pyiqa musiq' "$T/.out" || fail "musiq convention in --json"
# musiq_0 and musiq_batch (both 30x20) go through the network together.
expect_exit 0 "batched (--batch 4, two workers)" -- \
  "$E" -m musiq,musiq-ava --weights "$T/w" "$T/img" --json --batch 4 -j 2 --threads 1
values "$T/.out"

# 1000x1: its 224-pixel scale would be 224x0. Named, the others measured, exit 3.
printf 'P6\n1000 1\n255\n' >"$T/img/thin.ppm"
head -c 3000 /dev/urandom >>"$T/img/thin.ppm"
expect_exit 3 "an image too elongated" -- "$E" -m musiq --weights "$T/w" "$T/img" --json --batch 4
stderr_has "thin" "elongated image named"
stderr_has "too elongated for MUSIQ" "elongated image message"
check "$T/.out" musiq_2 musiq 1.10815807
grep -q '"count": 4' "$T/.out" || fail "the four good images should be measured"
finish
