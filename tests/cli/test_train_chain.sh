#!/usr/bin/env bash
# The RASS training chain at a tiny size, as examples/train-rass.sh runs it:
# rass-scenes -> rass-caption-map packs -> rass-train scr -> rass-merge-lora
# init-seg -> rass-train ras -> rass-restore / rass-segment with the exports
# -> rass-eval-miou. Checks: every stage logs all its loss terms and the RAS
# loss falls, the exports load in the inference tools, --resume of a finished
# run changes nothing, the init-seg folder is a complete segmentation folder
# (rass-segment runs on it, with both backbones), and wrong --classes / --head
# inputs are refused with the DESIGN.md exit codes and no partial folder.
source "$(dirname "$0")/lib.sh"
for t in rass-train rass-merge-lora rass-model rass-scenes rass-caption-map rass-restore rass-segment rass-eval-miou; do
  [ -x "$B/$t" ] || { echo "skipped: $t not built (no LibTorch)"; exit 77; }
done
TH=(--threads 2)

# Data and the SD folder (tiny4: four UNet levels, so RAS has its four up-block taps).
expect_exit 0 "scenes" -- "$B/rass-scenes" -n 4 --size 64 -s 3 -o "$T/scenes" -q
expect_exit 0 "tiny4 SD folder" -- "$B/rass-model" init --preset tiny4 --seed 2 -q "$T/sd"
tr -d ' \n' < "$T/sd/unet/config.json" | grep -q '"block_out_channels":\[16,16,32,32\]' || fail "tiny4 has a 4-level UNet"
expect_exit 0 "caption-map packs" -- "$B/rass-caption-map" --tags "$T/scenes/tags.tsv" --tokenizer "$T/sd" -O "$T/packs" -q \
  "$T/scenes/labels"

# Stage 1.
expect_exit 0 "rass-train scr" -- "$B/rass-train" scr -o "$T/scr" --steps 4 --batch 2 "${TH[@]}" --checkpoint-every 2 \
  --log-every 1 -q --set scr.sd="$T/sd" --set scr.hq_dir="$T/scenes/images" --set scr.pack_dir="$T/packs" \
  --set scr.crop_size=64
[ "$(wc -l < "$T/scr/log.jsonl")" -eq 4 ] || fail "scr: 4 log lines, got $(wc -l < "$T/scr/log.jsonl")"
for k in '"loss"' '"mse"' '"lpips"' '"l_region"' '"l_pixel"' '"lr"' '"grad_norm"'; do
  tail -1 "$T/scr/log.jsonl" | grep -qF "$k" || fail "scr log lacks $k"
done
[ -s "$T/scr/final/scr.unet.safetensors" ] || fail "scr export"
# Gradient checkpointing (the UNet's blocks recomputed in the backward; the
# SCL's attention maps outputs of their blocks' checkpoints): the same
# losses, l_region included, step by step.
expect_exit 0 "scr with gradient checkpointing" -- "$B/rass-train" scr -o "$T/scr-ckpt" --steps 4 --batch 2 "${TH[@]}" \
  --log-every 1 --set scr.sd="$T/sd" --set scr.hq_dir="$T/scenes/images" --set scr.pack_dir="$T/packs" \
  --set scr.crop_size=64 --set loop.gradient_checkpointing=true
# same_losses TOL LOG_A LOG_B KEY...: the two logs hold the same steps with
# the same values of KEY, to TOL relative (prints the largest difference).
same_losses() {
  python3 - "$@" <<'PY'
import json, sys
tol = float(sys.argv[1])
a, b = ([json.loads(l) for l in open(p)] for p in sys.argv[2:4])
assert len(a) == len(b) > 0, (len(a), len(b))
worst = max(abs(x[k] - y[k]) / (1 + abs(x[k])) for x, y in zip(a, b) for k in sys.argv[4:])
print("largest relative difference %.2g" % worst)
for x, y in zip(a, b):
    for k in sys.argv[4:]:
        assert abs(x[k] - y[k]) <= tol * (1 + abs(x[k])), (x["step"], k, x[k], y[k])
PY
}
stderr_has "gradient checkpointing: UNet on, VAE decoder on" "scr's modules are set to recompute"
same_losses 1e-5 "$T/scr/log.jsonl" "$T/scr-ckpt/log.jsonl" loss l_region grad_norm || fail "gradient checkpointing changed scr's losses"

# --resume of the finished run: a no-op (log, checkpoints and export unchanged).
sum() { find "$1" -type f \( -name '*.safetensors' -o -name '*.jsonl' -o -name '*.json' \) -print0 | sort -z | xargs -0 md5sum; }
sum "$T/scr" > "$T/scr.before"
expect_exit 0 "scr --resume of a finished run" -- "$B/rass-train" scr -o "$T/scr" --steps 4 --batch 2 "${TH[@]}" \
  --checkpoint-every 2 --log-every 1 -q --resume --set scr.sd="$T/sd" --set scr.hq_dir="$T/scenes/images" \
  --set scr.pack_dir="$T/packs" --set scr.crop_size=64
sum "$T/scr" > "$T/scr.after"
cmp -s "$T/scr.before" "$T/scr.after" || fail "scr --resume of a finished run changed files: $(diff "$T/scr.before" "$T/scr.after" | head -4)"

# A damaged image found mid-run keeps the steps done before it: a checkpoint
# of them, the step named; once the file is mended --resume ends where an
# uninterrupted run does (they were lost to the last periodic checkpoint).
SCR_SET=(--set scr.sd="$T/sd" --set scr.pack_dir="$T/packs" --set scr.crop_size=64)
mkdir -p "$T/mend"
cp "$T"/scenes/images/*.png "$T/mend/"
for n in 0 1 2 3; do  # the first scene whose damage is met after step 0 (the order is the run's own)
  head -c 2000 "$T/scenes/images/scene_00000$n.png" > "$T/mend/scene_00000$n.png"
  rm -rf "$T/cut"
  expect_exit 3 "scr on a damaged scene_00000$n" -- "$B/rass-train" scr -o "$T/cut" --steps 6 --batch 1 "${TH[@]}" \
    --log-every 1 -q --seed 3 "${SCR_SET[@]}" --set scr.hq_dir="$T/mend"
  cp "$T/scenes/images/scene_00000$n.png" "$T/mend/"
  grep -q "scr step 0)" "$T/.err" || break
done
stderr_has "scene_00000$n.png: truncated PNG data (scr step " "the file and the step are named"
stderr_has "are kept in $T/cut/checkpoints/step_" "the kept steps' checkpoint is named"
ls "$T"/cut/checkpoints/step_*.safetensors >/dev/null 2>&1 || fail "a checkpoint of the steps done"
expect_exit 0 "scr --resume after the mend" -- "$B/rass-train" scr -o "$T/cut" --steps 6 --batch 1 "${TH[@]}" \
  --log-every 1 -q --seed 3 --resume "${SCR_SET[@]}" --set scr.hq_dir="$T/mend"
expect_exit 0 "scr uninterrupted" -- "$B/rass-train" scr -o "$T/whole" --steps 6 --batch 1 "${TH[@]}" \
  --log-every 1 -q --seed 3 "${SCR_SET[@]}" --set scr.hq_dir="$T/mend"
cmp -s "$T/cut/final/scr.unet.safetensors" "$T/whole/final/scr.unet.safetensors" ||
  fail "the mended, resumed run differs from an uninterrupted one"

# init-seg: bad --classes / --head first (nothing written), then the folder.
SCR=$T/scr/final/scr.unet.safetensors
IS=(init-seg --model "$T/sd" --lora "$SCR" --head tiny --timestep 1 --formula residual -q)
: > "$T/empty.txt"
expect_exit 3 "init-seg --classes of an empty file" -- "$B/rass-merge-lora" "${IS[@]}" --classes "$T/empty.txt" -O "$T/bad1"
stderr_has "empty.txt" "the empty classes file is named"
printf 'sky\n\nroad\n' > "$T/hole.txt"
expect_exit 3 "init-seg --classes with an empty name inside" -- "$B/rass-merge-lora" "${IS[@]}" --classes "$T/hole.txt" -O "$T/bad2"
stderr_has "hole.txt" "the classes file with an empty name is named"
expect_exit 3 "init-seg --classes of a missing file" -- "$B/rass-merge-lora" "${IS[@]}" --classes "$T/none.txt" -O "$T/bad3"
stderr_has "none.txt" "the missing classes file is named"
echo '{"num_classes": 19, "num_queries": 8}' > "$T/head19.json"
expect_exit 3 "init-seg --head FILE whose num_classes differs from --classes" -- "$B/rass-merge-lora" init-seg \
  --model "$T/sd" --lora "$SCR" --head "$T/head19.json" --classes ade20k -O "$T/bad4"
stderr_has "head19.json" "the head file is named"
expect_exit 2 "init-seg --head of no such choice or file" -- "$B/rass-merge-lora" init-seg --model "$T/sd" --lora "$SCR" \
  --head huge -O "$T/bad5"
for d in bad1 bad2 bad3 bad4 bad5; do [ -e "$T/$d" ] && fail "$d: no partial folder after a refusal"; done
ls -a "$T" | grep -q '\.tmp' && fail "no temporary folder left after the refusals"

expect_exit 0 "init-seg" -- "$B/rass-merge-lora" "${IS[@]}" --classes ade20k --seed 4 -O "$T/seg-init"
for f in segment.json seg_head.safetensors seg_lora.safetensors rass.json unet/config.json unet_plain/config.json vae/config.json; do
  [ -e "$T/seg-init/$f" ] || fail "init-seg folder lacks $f"
done
grep -q '"num_classes": 150' "$T/seg-init/segment.json" || fail "segment.json: 150 ADE20K classes"
tr -d ' \n' < "$T/seg-init/segment.json" | grep -q '"feature_strides":\[4,8,32,16,8,8\]' || fail "segment.json: the released strides"
[ "$(stat -c %i "$T/seg-init/unet_plain/config.json")" = "$(stat -c %i "$T/sd/unet/config.json")" ] || fail "unet_plain/ is linked"
# A class file: its names in segment.json, the head sized by them.
printf 'sky\nroad\ntree\n' > "$T/three.txt"
expect_exit 0 "init-seg --classes FILE" -- "$B/rass-merge-lora" "${IS[@]}" --classes "$T/three.txt" -O "$T/seg-three"
grep -q '"num_classes": 3' "$T/seg-three/segment.json" || fail "--classes FILE sets num_classes"
grep -q '"road"' "$T/seg-three/segment.json" || fail "--classes FILE names recorded"
# The fresh folder runs in rass-segment (complete, loadable, finite scores), both backbones.
LQ=$T/scenes/images/scene_000000.png
expect_exit 0 "rass-segment on the init-seg folder" -- "$B/rass-segment" -m "$T/seg-init" "${TH[@]}" -q "$LQ" -o "$T/init.png"
[ -s "$T/init.png" ] || fail "no label map from the init-seg folder"
expect_exit 0 "rass-segment --backbone plain on the init-seg folder" -- "$B/rass-segment" -m "$T/seg-init" --backbone plain \
  "${TH[@]}" -q "$LQ" -o "$T/init_plain.png"

# Stage 2.
RAS=(ras -o "$T/ras" --steps 8 --batch 2 "${TH[@]}" --checkpoint-every 4 --log-every 1 --lr 1e-3 -q
  --set ras.model="$T/seg-init" --set ras.images="$T/scenes/images" --set ras.labels="$T/scenes/labels"
  --set ras.crop_size=64 --set ras.num_points=256)
expect_exit 0 "rass-train ras" -- "$B/rass-train" "${RAS[@]}"
# Gradient accumulation (loop.micro_batch): the batch of 2 in two forwards.
expect_exit 0 "ras in micro-batches of 1" -- "$B/rass-train" ras -o "$T/ras-micro" --steps 2 --batch 2 "${TH[@]}" -q \
  --set ras.model="$T/seg-init" --set ras.images="$T/scenes/images" --set ras.labels="$T/scenes/labels" \
  --set ras.crop_size=64 --set ras.num_points=256 --set loop.micro_batch=1
[ "$(wc -l < "$T/ras-micro/log.jsonl")" -eq 2 ] || fail "ras micro-batches: 2 log lines"
# Gradient checkpointing in ras (its up-block features captured): the same
# losses as the run above, step by step. Step 0 is equal; from step 1 the
# gradients' summation order differs (the replayed blocks' parameters get
# theirs inside the backward) and Adam carries the rounding into the weights
# of tensors with tiny gradients: the losses stay within 6e-5, the gradient
# norms within 3e-3 (the tests/train/test_ras_grad.cpp case checks the
# gradients themselves against the released code with checkpointing on).
expect_exit 0 "ras with gradient checkpointing" -- "$B/rass-train" ras -o "$T/ras-ckpt" --steps 8 --batch 2 "${TH[@]}" \
  --log-every 1 --lr 1e-3 -q --set ras.model="$T/seg-init" --set ras.images="$T/scenes/images" \
  --set ras.labels="$T/scenes/labels" --set ras.crop_size=64 --set ras.num_points=256 --set loop.gradient_checkpointing=true
same_losses 1e-3 "$T/ras/log.jsonl" "$T/ras-ckpt/log.jsonl" loss loss_mask || fail "gradient checkpointing changed ras's losses"
[ "$(wc -l < "$T/ras/log.jsonl")" -eq 8 ] || fail "ras: 8 log lines, got $(wc -l < "$T/ras/log.jsonl")"
for k in '"loss"' '"loss_ce"' '"loss_mask"' '"loss_dice"' '"loss_ce_0"' '"loss_dice_2"' '"lr"' '"grad_norm"'; do
  tail -1 "$T/ras/log.jsonl" | grep -qF "$k" || fail "ras log lacks $k"
done
# The total loss (first key "loss" of each line): the last 2 steps' below the first 2's.
losses=$(sed -n 's/.*"loss":\([-0-9.eE+]*\).*/\1/p' "$T/ras/log.jsonl" | tr '\n' ' ')
echo "ras losses: $losses"
echo "$losses" | awk '{ if (NF != 8 || $7 + $8 >= $1 + $2) exit 1 }' || fail "ras: the loss of the last 2 steps is not below the first 2's ($losses)"
sum "$T/ras" > "$T/ras.before"
expect_exit 0 "ras --resume of a finished run" -- "$B/rass-train" "${RAS[@]}" --resume
sum "$T/ras" > "$T/ras.after"
cmp -s "$T/ras.before" "$T/ras.after" || fail "ras --resume of a finished run changed files: $(diff "$T/ras.before" "$T/ras.after" | head -4)"

# The exports in the inference tools.
expect_exit 0 "rass-restore with the SCR export" -- "$B/rass-restore" -m "$T/sd" --lora "$SCR" --timestep 1 --formula residual \
  "${TH[@]}" -q "$LQ" -o "$T/restored.png"
[ -s "$T/restored.png" ] || fail "no restored image"
expect_exit 0 "rass-segment with the RAS export" -- "$B/rass-segment" -m "$T/ras/final" "${TH[@]}" -q \
  "$T/scenes/images" -O "$T/seg"
[ "$(ls "$T/seg" | wc -l)" -eq 4 ] || fail "4 label maps from the RAS export"
cmp -s "$T/seg-init/seg_head.safetensors" "$T/ras/final/seg_head.safetensors" && fail "the RAS export's head is the start's"
expect_exit 0 "rass-eval-miou of the predictions" -- "$B/rass-eval-miou" --classes ade20k "$T/seg" "$T/scenes/labels"
finish
