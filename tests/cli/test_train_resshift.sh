#!/usr/bin/env bash
# rass-train resshift end to end on the tiny ResShift network (tests/fixtures/nn/samsr_tiny):
# its loop defaults, a short run whose export rass-samsr runs as ResShift's
# chain and rass-train sinsr takes as its teacher, --resume equal to the
# straight run, refusals.
source "$(dirname "$0")/lib.sh"
R=$B/rass-train
[ -x "$R" ] || { echo "rass-train not built (no LibTorch)"; exit 77; }
[ -x "$B/rass-samsr" ] || { echo "rass-samsr not built"; exit 77; }
TINY=$FIX/nn/samsr_tiny
mkdir -p "$T/hq"
for k in 0 1 2; do cp "$FIX/train/sam_decoder_b.png" "$T/hq/$k.png"; done
SET=(--set resshift.model="$TINY" --set resshift.images="$T/hq" --set resshift.crop_size=64)

expect_exit 0 "--print-config" -- "$R" resshift "${SET[@]}" --print-config
for key in '"lr": 5e-05' '"weight_decay": 0.0' '"warmup_steps": 5000' '"batch": 64' '"ema_rate": 0.999' \
           '"lpips_weight": 0.0' '"preset": "realesrgan-x4"'; do
  grep -qF "$key" "$T/.out" || fail "--print-config lacks $key"
done
ARGS=(--steps 3 --batch 2 --set loop.warmup_steps=0 --lr 1e-4 -q)
expect_exit 0 "a short run" -- "$R" resshift "${SET[@]}" -o "$T/run" "${ARGS[@]}" --json
grep -qF '"steps_done":3' "$T/.out" || fail "--json summary: $(cat "$T/.out")"
tail -1 "$T/run/log.jsonl" | grep -qF '"mse"' || fail "log line lacks mse"
grep -qF '"method": "resshift"' "$T/run/final/samsr.json" || fail "the export is not method resshift"
cmp -s "$T/run/final/unet.safetensors" "$TINY/unet.safetensors" && fail "the export holds the start weights"
expect_exit 0 "rass-samsr runs the export's chain" -- "$B/rass-samsr" -q -m "$T/run/final" --steps 4 "$FIX/nn/samsr_lq.png" -o "$T/sr.png"
[ -s "$T/sr.png" ] || fail "rass-samsr wrote nothing"
expect_exit 0 "sinsr distils the trained teacher" -- "$R" sinsr --set sinsr.teacher="$T/run/final" --set sinsr.images="$T/hq" \
  --set sinsr.crop_size=64 -o "$T/student" --steps 1 --batch 1 -q
grep -qF '"method": "sinsr"' "$T/student/final/samsr.json" || fail "no SinSR student"

expect_exit 0 "1 step" -- "$R" resshift "${SET[@]}" -o "$T/half" "${ARGS[@]}" --stop-after 1
expect_exit 0 "--resume to 3" -- "$R" resshift "${SET[@]}" -o "$T/half" "${ARGS[@]}" --resume
cmp -s "$T/half/final/unet.safetensors" "$T/run/final/unet.safetensors" || fail "resumed weights differ from the straight run's"

expect_exit 2 "LPIPS without its weights" -- "$R" resshift "${SET[@]}" --set resshift.lpips_weight=1 -o "$T/x1" -q
stderr_has "resshift.lpips_weights" "the setting is named"
expect_exit 2 "a preset that is not x4" -- "$R" resshift "${SET[@]}" --set resshift.preset=lqseg-1 -o "$T/x2" -q
stderr_has "resshift.preset" "the setting is named"
expect_exit 2 "the export over the start folder" -- "$R" resshift "${SET[@]}" -o "$T/x3" --set loop.export_dir="$TINY" -q
[ -s "$TINY/unet.safetensors" ] || fail "the start folder is damaged"
# The export replaces neither another run's export nor a folder holding an input file.
expect_exit 2 "over another run's export" -- "$R" resshift "${SET[@]}" -o "$T/x4" --steps 1 --batch 1 -q \
  --set loop.export_dir="$T/run/final"
stderr_has "another run" "the other run is named"
cmp -s "$T/half/final/unet.safetensors" "$T/run/final/unet.safetensors" || fail "the other run's export changed"
mkdir -p "$T/keep" && cp "$FIX/iqa/lpips_vgg.safetensors" "$T/keep/lp.safetensors"
expect_exit 2 "an export folder holding the LPIPS weights" -- "$R" resshift "${SET[@]}" -o "$T/x5" --steps 1 --batch 1 -q \
  --set resshift.lpips_weight=1 --set resshift.lpips_weights="$T/keep/lp.safetensors" --set loop.export_dir="$T/keep"
[ -s "$T/keep/lp.safetensors" ] || fail "the LPIPS weights are gone"
expect_exit 3 "LPIPS weights that are not LPIPS's" -- "$R" resshift "${SET[@]}" -o "$T/x6" -q \
  --set resshift.lpips_weight=1 --set resshift.lpips_weights="$TINY/unet.safetensors"
stderr_has "not an LPIPS weight file" "the file is named for what it is not"
# The start folder's sam/ goes along: SAMSR's distillation takes the export as its teacher.
[ -s "$T/run/final/sam/sam.json" ] || fail "the export lacks the start folder's sam/"
expect_exit 0 "sinsr noise sam from the export" -- "$R" sinsr --set sinsr.teacher="$T/run/final" --set sinsr.images="$T/hq" \
  --set sinsr.crop_size=64 --set sinsr.noise=sam -o "$T/samstudent" --steps 1 --batch 1 -q
finish
