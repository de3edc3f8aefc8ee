#!/usr/bin/env bash
# rass-train sam-enhancer (GleSAM's first stage) end to end on the tiny SAM
# and SD (tests/fixtures/nn/sam_tiny, sd_tiny): its loop defaults in
# --print-config, a short run with GleSAM's online degradation whose export
# rass-sam runs as a GleSAM folder (and rass-train sam-decoder starts from),
# --resume giving the uninterrupted run's weights byte for byte, a run from
# given LQ images, and refusals before any step.
source "$(dirname "$0")/lib.sh"
R=$B/rass-train
[ -x "$R" ] || { echo "rass-train not built (no LibTorch)"; exit 77; }
[ -x "$B/rass-sam" ] || { echo "rass-sam not built"; exit 77; }
TINY=$FIX/nn/sam_tiny
SD=$FIX/nn/sd_tiny
mkdir -p "$T/hq" "$T/lq"
for k in a b; do
  cp "$FIX/train/sam_enhancer_${k}_hq.png" "$T/hq/$k.png"
  cp "$FIX/train/sam_enhancer_${k}_lq.png" "$T/lq/$k.png"
done
SET=(--set sam-enhancer.model="$TINY" --set sam-enhancer.sd="$SD" --set sam-enhancer.images="$T/hq"
     --set sam-enhancer.size=64)

expect_exit 0 "--help lists sam-enhancer" -- "$R" --help
grep -q sam-enhancer "$T/.out" || fail "--help lacks sam-enhancer"
expect_exit 0 "--print-config" -- "$R" sam-enhancer "${SET[@]}" --print-config
for key in '"optimizer": "adamw"' '"lr": 0.0001' '"weight_decay": 0.01' '"clip_grad_norm": 10.0' '"batch": 4' \
           '"warmup_steps": 500' '"warmup_factor": 0.0' '"preset": "glesam"' '"lora_rank": 8' '"feat_weight": 0.0' '"timestep": -1' \
           '"downsamplers.0.conv"'; do
  grep -qF "$key" "$T/.out" || fail "--print-config lacks $key"
done

# A short run with GleSAM's degradation; the export is a GleSAM folder.
RUN=(--steps 4 --batch 2 --lr 1e-3 --set loop.warmup_steps=0)
expect_exit 0 "a short run" -- "$R" sam-enhancer "${SET[@]}" -o "$T/run" "${RUN[@]}" --checkpoint-every 2 --json -q
grep -qF '"steps_done":4' "$T/.out" || fail "--json summary: $(cat "$T/.out")"
tail -1 "$T/run/log.jsonl" | grep -qF '"loss_mse"' || fail "the log line lacks loss_mse"
for f in sam.json sam.safetensors unet/config.json unet/diffusion_pytorch_model.safetensors text_encoder/config.json \
         tokenizer/vocab.json scheduler/scheduler_config.json glesam_lora.safetensors; do
  [ -s "$T/run/final/$f" ] || fail "the export lacks $f"
done
grep -q '"enhancer"' "$T/run/final/sam.json" || fail "sam.json names no enhancer"
cmp -s "$T/run/final/sam.safetensors" "$TINY/sam.safetensors" || fail "SAM's weights changed"
expect_exit 0 "rass-sam on the export" -- "$B/rass-sam" -q -m "$T/run/final" "$T/lq/a.png" --point 16,24 -o "$T/m.png" --json
[ -s "$T/m.png" ] || fail "rass-sam wrote no mask"
expect_exit 0 "rass-sam on the export, its enhancer off (runs)" -- "$B/rass-sam" -q -m "$T/run/final" "$T/lq/a.png" --point 16,24 -o "$T/m0.png" \
  --enhance off
# GleSAM's second stage starts from the export (its decoder on the enhanced embeddings).
mkdir -p "$T/dimg" "$T/dmask"
for k in a b; do
  cp "$FIX/train/sam_decoder_$k.png" "$T/dimg/$k.png"
  cp "$FIX/train/sam_decoder_${k}_mask.png" "$T/dmask/$k.png"
done
expect_exit 0 "sam-decoder from the export" -- "$R" sam-decoder --set sam-decoder.model="$T/run/final" \
  --set sam-decoder.images="$T/dimg" --set sam-decoder.labels="$T/dmask" --set sam-decoder.masks=binary \
  --set sam-decoder.size=64 --set sam-decoder.enhance=on -o "$T/dec" --steps 1 --batch 1 -q
[ -s "$T/dec/final/unet/diffusion_pytorch_model.safetensors" ] || fail "the decoder's export lacks the enhancer"

# --resume: 2 steps, then 2 more, equal 4 straight (every draw is keyed by seed, step and sample).
expect_exit 0 "2 steps" -- "$R" sam-enhancer "${SET[@]}" -o "$T/half" --steps 2 --batch 2 --lr 1e-3 \
  --set loop.warmup_steps=0 -q
# (check_data may change on resume: it changes no weight.)
expect_exit 0 "--resume to 4" -- "$R" sam-enhancer "${SET[@]}" -o "$T/half" "${RUN[@]}" --resume \
  --set sam-enhancer.check_data=false -q
cmp -s "$T/half/final/unet/diffusion_pytorch_model.safetensors" "$T/run/final/unet/diffusion_pytorch_model.safetensors" ||
  fail "resumed weights differ from the straight run's"
cmp -s "$T/half/final/glesam_lora.safetensors" "$T/run/final/glesam_lora.safetensors" || fail "resumed adapters differ"

# Given LQ images (preset none): on the same two pairs every step, the
# enhancer learns (30 steps at lr 1e-2 take the loss from 1.12 to 1.02).
expect_exit 0 "given LQ" -- "$R" sam-enhancer "${SET[@]}" --set sam-enhancer.lq="$T/lq" --set sam-enhancer.preset=none \
  --set sam-enhancer.size=32 -o "$T/given" --steps 30 --batch 2 --lr 1e-2 --set loop.warmup_steps=0 \
  --set loop.log_every=1 -q
[ -s "$T/given/final/glesam_lora.safetensors" ] || fail "no export from given LQ images"
losses=$(grep -o '"loss_mse":[0-9.e+-]*' "$T/given/log.jsonl" | cut -d: -f2)
[ "$(echo "$losses" | wc -l)" = 30 ] || fail "30 logged losses expected: $losses"
awk -v a="$(echo "$losses" | head -1)" -v b="$(echo "$losses" | tail -1)" 'BEGIN { exit !(b < 0.95 * a) }' ||
  fail "the loss did not fall by 5% in 30 steps: $(echo "$losses" | head -1) -> $(echo "$losses" | tail -1)"

# A GleSAM folder as the start (no sd): its enhancer's g and T carry over unless set.
expect_exit 0 "g 3, T 7" -- "$R" sam-enhancer "${SET[@]}" --set sam-enhancer.feat_weight=3 --set sam-enhancer.timestep=7 \
  -o "$T/g3" --steps 1 --batch 2 -q
expect_exit 0 "fine-tuning that enhancer" -- "$R" sam-enhancer "${SET[@]}" --set sam-enhancer.model="$T/g3/final" \
  --set sam-enhancer.sd= -o "$T/g3b" --steps 1 --batch 2 -q
grep -Eq '"feat_weight": 3(\.0)?,?$' "$T/g3b/final/sam.json" && grep -Eq '"timestep": 7,?$' "$T/g3b/final/sam.json" ||
  fail "the start folder's g and T were not kept: $(cat "$T/g3b/final/sam.json")"
expect_exit 0 "a GleSAM folder with sd" -- "$R" sam-enhancer "${SET[@]}" --set sam-enhancer.model="$T/g3/final" \
  -o "$T/g3c" --steps 1 --batch 2
stderr_has "has an enhancer" "the replaced enhancer is named"

# loop.dtype bf16: SAM's frozen encoder in bf16 (another loss than float32's).
expect_exit 0 "bf16 encoder" -- "$R" sam-enhancer "${SET[@]}" -o "$T/bf" --steps 1 --batch 2 --dtype bf16 -q
expect_exit 0 "fp32 encoder" -- "$R" sam-enhancer "${SET[@]}" -o "$T/f32" --steps 1 --batch 2 -q
cmp -s <(grep -o '"loss_mse":[^,}]*' "$T/bf/log.jsonl") <(grep -o '"loss_mse":[^,}]*' "$T/f32/log.jsonl") &&
  fail "--dtype bf16 changed nothing"

# Refusals, before any step.
expect_exit 2 "LQ images with an online preset" -- "$R" sam-enhancer "${SET[@]}" --set sam-enhancer.lq="$T/lq" -o "$T/x1" -q
stderr_has "preset none" "the way out is named"
expect_exit 2 "plain SAM without sd" -- "$R" sam-enhancer "${SET[@]}" --set sam-enhancer.sd= -o "$T/x2" -q
stderr_has "sam-enhancer.sd" "the setting is named"
expect_exit 2 "a SAM 2 folder" -- "$R" sam-enhancer "${SET[@]}" --set sam-enhancer.model="$FIX/nn/sam2_tiny" -o "$T/x3" -q
stderr_has "SAM 2" "SAM 2 is named"
expect_exit 2 "an unknown setting" -- "$R" sam-enhancer "${SET[@]}" --set sam-enhancer.feat_wieght=3 -o "$T/x4" -q
stderr_has "feat_wieght" "the setting is named"
echo x > "$T/afile"
expect_exit 2 "-o a file" -- "$R" sam-enhancer "${SET[@]}" -o "$T/afile" -q
stderr_has "loop.out_dir" "the output setting is named"
expect_exit 2 "a run inside the SD folder" -- "$R" sam-enhancer "${SET[@]}" -o "$SD/run" -q
[ -e "$SD/run" ] && fail "a folder was made inside the SD folder"
cp "$T/hq/a.png" "$T/trunc.png" && head -c 300 "$T/trunc.png" > "$T/hq/a.png"
expect_exit 3 "a truncated HQ image" -- "$R" sam-enhancer "${SET[@]}" -o "$T/x5" -q
stderr_has "a.png" "the file is named"
[ -e "$T/x5/final" ] && fail "an export from a refused run"
exit 0
