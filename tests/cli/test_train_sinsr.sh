#!/usr/bin/env bash
# rass-train sinsr end to end on the tiny ResShift network (tests/fixtures/nn/samsr_tiny):
# its loop defaults in --print-config, short runs (Gaussian noise; SAM noise)
# whose exports rass-samsr runs, --resume giving the straight run's export
# byte for byte, and refusals before any step.
source "$(dirname "$0")/lib.sh"
R=$B/rass-train
[ -x "$R" ] || { echo "rass-train not built (no LibTorch)"; exit 77; }
[ -x "$B/rass-samsr" ] || { echo "rass-samsr not built"; exit 77; }
TINY=$FIX/nn/samsr_tiny
mkdir -p "$T/hq"
# HQ images: an 80x80 fixture image three times (each sample its own keyed crop).
for k in 0 1 2; do cp "$FIX/train/sam_decoder_b.png" "$T/hq/$k.png"; done
SET=(--set sinsr.teacher="$TINY" --set sinsr.images="$T/hq" --set sinsr.crop_size=64)

expect_exit 0 "--help lists sinsr" -- "$R" --help
grep -q sinsr "$T/.out" || fail "--help lacks sinsr"
expect_exit 0 "--print-config" -- "$R" sinsr "${SET[@]}" --print-config
for key in '"optimizer": "adamw"' '"lr": 5e-05' '"weight_decay": 0.0' '"warmup_steps": 5000' '"warmup_factor": 0.0' \
           '"batch": 64' '"ema_rate": 0.999' '"preset": "realesrgan-x4"' '"noise": "gaussian"' '"xT_weight": 1.0'; do
  grep -qF "$key" "$T/.out" || fail "--print-config lacks $key"
done

# SinSR: a short run; its export runs in rass-samsr as method sinsr.
ARGS=(--steps 3 --batch 2 --set loop.warmup_steps=0 --lr 1e-4 -q)
expect_exit 0 "a short run (Gaussian noise)" -- "$R" sinsr "${SET[@]}" -o "$T/run" "${ARGS[@]}" --json
grep -qF '"steps_done":3' "$T/.out" || fail "--json summary: $(cat "$T/.out")"
for k in '"mse"' '"mse_xT"' '"mse_gt"'; do tail -1 "$T/run/log.jsonl" | grep -qF "$k" || fail "log line lacks $k"; done
grep -qF '"method": "sinsr"' "$T/run/final/samsr.json" || fail "the export is not method sinsr"
cmp -s "$T/run/final/unet.safetensors" "$TINY/unet.safetensors" && fail "the export holds the teacher's weights"
cmp -s "$T/run/final/autoencoder.safetensors" "$TINY/autoencoder.safetensors" || fail "the autoencoder is not the teacher's"
[ ! -e "$T/run/final/sam" ] || fail "a SinSR export carries a SAM folder"
expect_exit 0 "rass-samsr on the export" -- "$B/rass-samsr" -q -m "$T/run/final" "$FIX/nn/samsr_lq.png" -o "$T/sr.png"
[ -s "$T/sr.png" ] || fail "rass-samsr wrote nothing"

# --resume: 1 step, then 2 more, equal 3 straight (keyed draws; the EMA is checkpointed).
expect_exit 0 "1 step" -- "$R" sinsr "${SET[@]}" -o "$T/half" "${ARGS[@]}" --stop-after 1
expect_exit 0 "--resume to 3" -- "$R" sinsr "${SET[@]}" -o "$T/half" "${ARGS[@]}" --resume
cmp -s "$T/half/final/unet.safetensors" "$T/run/final/unet.safetensors" || fail "resumed weights differ from the straight run's"

# --resume of a finished run: nothing to do, every step counted.
expect_exit 0 "--resume of a finished run" -- "$R" sinsr "${SET[@]}" -o "$T/run" "${ARGS[@]}" --resume --json
grep -qF '"steps_done":3' "$T/.out" || fail "a finished run reports: $(cat "$T/.out")"

# SAMSR: SAM noise from the teacher's sam/; the export is method samsr with sam/.
expect_exit 0 "a short run (SAM noise)" -- "$R" sinsr "${SET[@]}" --set sinsr.noise=sam -o "$T/sam" --steps 1 --batch 2 -q
grep -qF '"method": "samsr"' "$T/sam/final/samsr.json" || fail "the export is not method samsr"
[ -s "$T/sam/final/sam/sam.json" ] || fail "the SAMSR export lacks sam/"
expect_exit 0 "rass-samsr on the SAMSR export" -- "$B/rass-samsr" -q -m "$T/sam/final" "$FIX/nn/samsr_lq.png" -o "$T/sr2.png"

# Paired data (preset none): LQ images a quarter of the HQ size, paired by key.
expect_exit 0 "LQ images for the pairs" -- "$B/rass-degrade" "$T/hq" -o "$T/lq" -p realesrgan-x4 -q
expect_exit 0 "a short run on pairs" -- "$R" sinsr "${SET[@]}" --set sinsr.preset=none --set sinsr.lq_images="$T/lq" \
  -o "$T/pairs" --steps 1 --batch 2 -q
[ -s "$T/pairs/final/unet.safetensors" ] || fail "no export from the paired run"
expect_exit 2 "LQ images with an online preset" -- "$R" sinsr "${SET[@]}" --set sinsr.lq_images="$T/lq" -o "$T/x7" -q
stderr_has "preset=none" "the fix is named"
cp "$FIX/nn/samsr_lq.png" "$T/lq/1.png"
expect_exit 3 "an LQ image that is not a quarter of its HQ image" -- "$R" sinsr "${SET[@]}" --set sinsr.preset=none \
  --set sinsr.lq_images="$T/lq" -o "$T/x8" --steps 2 --batch 3 -q
stderr_has "lq/1.png" "the LQ image is named"
[ ! -e "$T/x8/checkpoints" ] || fail "the bad pair was found only after training began"

# Refusals, before any step.
expect_exit 2 "a preset that is not x4" -- "$R" sinsr "${SET[@]}" --set sinsr.preset=lqseg-1 -o "$T/x1" -q
stderr_has "x4" "the scale is named"
expect_exit 2 "a crop the network cannot take" -- "$R" sinsr "${SET[@]}" --set sinsr.crop_size=68 -o "$T/x2" -q
stderr_has "crop_size" "the setting is named"
expect_exit 2 "an unknown noise" -- "$R" sinsr "${SET[@]}" --set sinsr.noise=uniform -o "$T/x3" -q
stderr_has "sinsr.noise" "the setting is named"
expect_exit 2 "ema_rate 1" -- "$R" sinsr "${SET[@]}" --set loop.ema_rate=1 -o "$T/x4" -q
stderr_has "loop.ema_rate" "the setting is named"
mkdir -p "$T/t0" && cp -r "$TINY"/* "$T/t0/"
expect_exit 2 "an output inside the teacher folder" -- "$R" sinsr "${SET[@]}" --set sinsr.teacher="$T/t0" -o "$T/t0/run" -q
stderr_has "sinsr.teacher" "the input folder is named"
expect_exit 2 "an export over the images" -- "$R" sinsr "${SET[@]}" -o "$T/x5" --set loop.export_dir="$T/hq" -q
[ -s "$T/hq/0.png" ] || fail "the images are gone"
expect_exit 2 "GleSAM's preset (LQ of the HQ size)" -- "$R" sinsr "${SET[@]}" --set sinsr.preset=glesam -o "$T/x9" -q
stderr_has "HQ size" "the preset's sizes are named"
expect_exit 3 "SAM noise without a SAM folder" -- "$R" sinsr "${SET[@]}" --set sinsr.noise=sam --set sinsr.sam="$T/hq" -o "$T/x10" -q
stderr_has "sinsr.sam" "the setting is named"
bad=$(printf '%s/t\377' "$T")
mkdir -p "$bad" && cp -r "$TINY"/* "$bad/"
expect_exit 2 "a teacher folder whose name is not UTF-8" -- "$R" sinsr "${SET[@]}" --set sinsr.teacher="$bad" -o "$T/x11" -q
stderr_has "sinsr.teacher" "the setting is named"
mkdir -p "$T/small" && cp "$FIX/nn/samsr_lq.png" "$T/small/"
expect_exit 3 "an image smaller than the crop" -- "$R" sinsr "${SET[@]}" --set sinsr.images="$T/small" -o "$T/x6" --steps 1 --batch 1 -q
stderr_has "samsr_lq.png" "the image is named"
finish
