#!/usr/bin/env bash
# rass-train sam-decoder end to end on the tiny SAM (tests/fixtures/nn/sam_tiny):
# its loop defaults in --print-config, a short run whose export rass-sam
# loads, --resume giving the uninterrupted run's weights byte for byte, and
# refusals (bad masks, an output inside the model folder, other decoders).
source "$(dirname "$0")/lib.sh"
R=$B/rass-train
[ -x "$R" ] || { echo "rass-train not built (no LibTorch)"; exit 77; }
[ -x "$B/rass-sam" ] || { echo "rass-sam not built"; exit 77; }
TINY=$FIX/nn/sam_tiny
mkdir -p "$T/img" "$T/mask"
for k in a b; do
  cp "$FIX/train/sam_decoder_$k.png" "$T/img/$k.png"
  cp "$FIX/train/sam_decoder_${k}_mask.png" "$T/mask/$k.png"
done
SET=(--set sam-decoder.model="$TINY" --set sam-decoder.images="$T/img" --set sam-decoder.labels="$T/mask"
     --set sam-decoder.masks=binary --set sam-decoder.size=64)

expect_exit 0 "--help lists sam-decoder" -- "$R" --help
grep -q sam-decoder "$T/.out" || fail "--help lacks sam-decoder"
expect_exit 0 "--print-config" -- "$R" sam-decoder "${SET[@]}" --print-config
for key in '"optimizer": "adam"' '"lr": 0.0001' '"weight_decay": 1e-05' '"clip_grad_norm": 0.0' '"batch": 1' \
           '"preset": "glesam"' '"points": 3' '"focal_alpha": 0.25'; do
  grep -qF "$key" "$T/.out" || fail "--print-config lacks $key"
done

# A short run with GleSAM's degradation; its export runs in rass-sam.
expect_exit 0 "a short run" -- "$R" sam-decoder "${SET[@]}" -o "$T/run" --steps 4 --batch 2 --lr 1e-3 --checkpoint-every 2 --json -q
grep -qF '"steps_done":4' "$T/.out" || fail "--json summary: $(cat "$T/.out")"
for k in '"loss_focal"' '"loss_dice"'; do tail -1 "$T/run/log.jsonl" | grep -qF "$k" || fail "log line lacks $k"; done
[ -s "$T/run/final/sam.safetensors" ] && [ -s "$T/run/final/sam.json" ] || fail "no exported SAM folder"
cmp -s "$T/run/final/sam.safetensors" "$TINY/sam.safetensors" && fail "the export holds the start weights"
expect_exit 0 "rass-sam on the export" -- "$B/rass-sam" -q -m "$T/run/final" "$T/img/a.png" --point 16,24 -o "$T/m.png"
[ -s "$T/m.png" ] || fail "rass-sam wrote no mask"

# --resume: 2 steps, then 2 more, equal 4 straight (every draw is keyed by seed, step and sample).
expect_exit 0 "2 steps" -- "$R" sam-decoder "${SET[@]}" -o "$T/half" --steps 2 --batch 2 --lr 1e-3 -q
expect_exit 0 "--resume to 4" -- "$R" sam-decoder "${SET[@]}" -o "$T/half" --steps 4 --batch 2 --lr 1e-3 --resume -q
cmp -s "$T/half/final/sam.safetensors" "$T/run/final/sam.safetensors" || fail "resumed weights differ from the straight run's"

# loop.dtype is not the decoder's (its weights train in float32): said, not ignored silently.
expect_exit 0 "--dtype bf16" -- "$R" sam-decoder "${SET[@]}" -o "$T/bf" --steps 1 --dtype bf16
stderr_has "loop.dtype is not used" "the unused dtype is named"

# Refusals, before any step.
expect_exit 2 "an unknown optimizer" -- "$R" sam-decoder "${SET[@]}" -o "$T/x" --set loop.optimizer=sgd -q
stderr_has "loop.optimizer" "the optimizer is named"
mkdir -p "$T/m0"
cp "$TINY"/* "$T/m0/"
expect_exit 2 "an output inside the model folder" -- "$R" sam-decoder "${SET[@]}" --set sam-decoder.model="$T/m0" -o "$T/m0/run" -q
stderr_has "sam-decoder.model" "the input folder is named"
expect_exit 2 "a SAM 2 folder" -- "$R" sam-decoder "${SET[@]}" --set sam-decoder.model="$FIX/nn/sam2_tiny" -o "$T/y" -q
stderr_has "SAM 2" "SAM 2 is named"
# The export replaces its folder whole: never one that holds the inputs or
# the run, never a folder of other files; an earlier export is replaced.
expect_exit 2 "an export folder holding the images" -- "$R" sam-decoder "${SET[@]}" -o "$T/e1" --set loop.export_dir="$T" -q
stderr_has "loop.export_dir" "the setting is named"
[ -s "$T/img/a.png" ] || fail "the images are gone"
expect_exit 2 "the export folder is the run's" -- "$R" sam-decoder "${SET[@]}" -o "$T/e2" --set loop.export_dir="$T/e2" -q
stderr_has "output directory" "the run's directory is named"
mkdir -p "$T/keep" && echo precious > "$T/keep/file.txt"
expect_exit 2 "an export over a folder of other files" -- "$R" sam-decoder "${SET[@]}" -o "$T/e3" --set loop.export_dir="$T/keep" -q
stderr_has "not an earlier export" "the folder is left alone"
[ -s "$T/keep/file.txt" ] || fail "the folder's file is gone"
expect_exit 0 "an export to its own folder" -- "$R" sam-decoder "${SET[@]}" -o "$T/e4" --steps 1 --set loop.export_dir="$T/e4x" -q
[ -e "$T/e4x/.rass-export" ] || fail "the export holds no .rass-export mark"
expect_exit 0 "the same run's export again (resumed, one more step)" -- "$R" sam-decoder "${SET[@]}" -o "$T/e4" --steps 2 \
  --set loop.export_dir="$T/e4x" --resume -q
expect_exit 2 "an export over another run's export" -- "$R" sam-decoder "${SET[@]}" -o "$T/e8" --steps 1 \
  --set loop.export_dir="$T/run/final" -q
stderr_has "another run" "the other run is named"
# A manifest's listed folders are inputs too.
printf '{"image": "img/b.png", "label": "mask/b.png"}\n' > "$T/man.jsonl"
expect_exit 2 "an export among a manifest's images" -- "$R" sam-decoder --set sam-decoder.model="$TINY" \
  --set sam-decoder.manifest="$T/man.jsonl" --set sam-decoder.masks=binary --set sam-decoder.size=64 -o "$T/e7" \
  --set loop.export_dir="$T/img/run" -q
stderr_has "a folder it lists files in" "the manifest's folder is named"
# The default export folder follows the same rule, checked before the first step.
mkdir -p "$T/e6/final" && echo notes > "$T/e6/final/notes.txt"
expect_exit 2 "OUT/final holding other files" -- "$R" sam-decoder "${SET[@]}" -o "$T/e6" --steps 1 -q
stderr_has "not an earlier export" "the folder is named"
[ ! -e "$T/e6/checkpoints" ] && [ -s "$T/e6/final/notes.txt" ] || fail "the refused run trained or touched final/"
# A symbolic link loop in the start folder: refused before the first step.
mkdir -p "$T/m1" && cp "$TINY"/* "$T/m1/" && ln -s . "$T/m1/loop"
expect_exit 3 "a start folder with a link loop" -- "$R" sam-decoder "${SET[@]}" --set sam-decoder.model="$T/m1" -o "$T/e5" -q
stderr_has "symbolic link loop" "the loop is named"
[ ! -e "$T/e5/checkpoints" ] || fail "a refused run trained"

# a's mask as 0/1 values (a PGM of ones): no object pixel of 255.
rm "$T/mask/a.png"
{ printf 'P5\n48 48\n255\n'; head -c 2304 /dev/zero | tr '\0' '\1'; } > "$T/mask/a.pgm"
expect_exit 3 "a binary mask with no 255 pixel" -- "$R" sam-decoder "${SET[@]}" -o "$T/z" -q
stderr_has "mask/a.pgm" "the mask is named"
[ ! -e "$T/z/checkpoints" ] || fail "a refused run left checkpoints"
finish
