# rass-sam on the committed tiny SAM folders (tests/fixtures/nn/sam_tiny and
# sam_tiny_gle, random weights; tests/nn/make_sam_fixture.py +
# scripts/convert_sam.py): point and box prompts, stdin/stdout, prompts made
# from a label map (boxes, seeded points), GleSAM's enhancer on and off, a
# batch with --resume and --shard, and bad inputs with their exit codes and
# no partial output. Numerical equality with segment-anything's SamPredictor
# and GleSAM's enhancement is tests/nn/test_sam.cpp.
. "$(dirname "$0")/lib.sh"
S=$B/rass-sam
[ -x "$S" ] || { echo "skipped: rass-sam not built (no LibTorch)"; exit 77; }
N=$FIX/nn
M=$N/sam_tiny
G=$N/sam_tiny_gle
A=$N/sam_a.png  # 53x37

png_info() { od -An -tu1 -j16 -N10 "$1" | awk '{printf "%dx%d depth %d color %d", $1*16777216+$2*65536+$3*256+$4, $5*16777216+$6*65536+$7*256+$8, $9, $10}'; }
# label_pgm FILE: a 53x37 label map: 0 background, 1 a box (x 5..29, y 4..24),
# 2 a box (x 32..49, y 10..35), 255 in column 52.
label_pgm() {
  { printf 'P5\n53 37\n255\n'
    for y in $(seq 0 36); do
      for x in $(seq 0 52); do
        if [ "$x" -eq 52 ]; then printf '\377'
        elif [ "$x" -ge 5 ] && [ "$x" -le 29 ] && [ "$y" -ge 4 ] && [ "$y" -le 24 ]; then printf '\001'
        elif [ "$x" -ge 32 ] && [ "$x" -le 49 ] && [ "$y" -ge 10 ] && [ "$y" -le 35 ]; then printf '\002'
        else printf '\000'; fi
      done
    done; } >"$1"
}
label_pgm "$T/lab.pgm"

expect_exit 0 "points: one object" -- "$S" -m "$M" "$A" --point 10,12 --point 40,30,0 -o "$T/p.png" --json
[ "$(png_info "$T/p.png")" = "53x37 depth 8 color 0" ] || fail "mask: $(png_info "$T/p.png"), expected 53x37 8-bit gray"
grep -q '"objects":\[{"label":255,"points":\[\[10.0,12.0\],\[40.0,30.0\]\],"point_labels":\[1,0\]' "$T/.out" ||
  fail "the record lists the object's points and labels: $(cat "$T/.out")"
grep -q '"enhanced":false' "$T/.out" || fail "a plain SAM folder is not enhanced"
grep -q '"fill":0' "$T/.out" || fail "flag prompts fill with 0"

expect_exit 0 "stdin to stdout" -- bash -c "'$S' -m '$M' --box 5,4,30,25 -q - -o - <'$A' >'$T/pipe.png'"
expect_exit 0 "same with files" -- "$S" -m "$M" --box 5,4,30,25 -q "$A" -o "$T/file.png"
# A repeatable option takes one value: the image after it is the input.
expect_exit 0 "--box then the image" -- "$S" -m "$M" --box 5,4,30,25 "$A" --point 10,12 -o "$T/order.png" -q
same_pixels "$T/pipe.png" "$T/file.png" || fail "stdin/stdout and files give different masks"
expect_exit 0 "--multimask" -- "$S" -m "$M" --box 5,4,30,25 --multimask --json -q "$A" -o "$T/multi.png"
grep -Eq '"mask_token":[123]' "$T/.out" || fail "--multimask keeps one of tokens 1..3: $(cat "$T/.out")"

# SAM 2 (tests/fixtures/nn/sam2_tiny; equality with SAM2ImagePredictor is
# tests/nn/test_sam2.cpp): its record, label maps, its generator's default,
# and what it refuses.
S2=$N/sam2_tiny
expect_exit 0 "SAM 2: a box" -- "$S" -m "$S2" --box 5,4,30,25 --json "$A" -o "$T/s2.png"
[ "$(png_info "$T/s2.png")" = "53x37 depth 8 color 0" ] || fail "SAM 2 mask: $(png_info "$T/s2.png")"
grep -q '"architecture":"sam2"' "$T/.out" || fail "the record names SAM 2: $(cat "$T/.out")"
grep -q '"object_score":' "$T/.out" || fail "SAM 2's record gives the object score"
expect_exit 0 "SAM 2: --prompts-from, two objects" -- "$S" -m "$S2" "$A" --prompts-from "$T/lab.pgm" --skip 0,255 \
  -o "$T/s2l.png" --json -q
grep -q '{"label":2,"box":\[32.0,10.0,49.0,35.0\]' "$T/.out" || fail "SAM 2: object 2's box"
# Segment everything: the default --pred-iou-thresh is SAM2AutomaticMaskGenerator's
# 0.8 (on sam_b a second mask's predicted IoU lies between 0.8 and 0.88).
SB=$N/sam_b.png
masks() { grep -o '"iou_pred"' "$T/.out" | wc -l; }
expect_exit 0 "SAM 2: --everything" -- "$S" -m "$S2" --everything --points-per-side 4 --stability-thresh 0 "$SB" \
  -o "$T/s2e.png" --json -q
grep -q '"masks":\[{"id":1' "$T/.out" || fail "SAM 2's generator keeps masks: $(cat "$T/.out")"
n_default=$(masks)
expect_exit 0 "SAM 2: --everything, 0.8 given" -- "$S" -m "$S2" --everything --points-per-side 4 --stability-thresh 0 \
  --pred-iou-thresh 0.8 "$SB" -o "$T/s2e8.png" -q
cmp -s "$T/s2e.png" "$T/s2e8.png" || fail "SAM 2's default --pred-iou-thresh is not 0.8 (the outputs differ)"
expect_exit 0 "SAM 2: --everything, 0.88 given" -- "$S" -m "$S2" --everything --points-per-side 4 --stability-thresh 0 \
  --pred-iou-thresh 0.88 "$SB" -o "$T/s2e88.png" --json -q
[ "$(masks)" -lt "$n_default" ] || fail "SAM 2's default kept no more masks ($n_default) than 0.88 ($(masks))"
# --m2m (use_m2m): every mask decoded again with its own logits as the mask
# prompt before the filters (on sam_b the tiny model keeps more masks with it).
expect_exit 0 "SAM 2: --everything --m2m" -- "$S" -m "$S2" --everything --m2m --points-per-side 4 --stability-thresh 0 --nms-thresh 1 \
  --pred-iou-thresh 0.5 "$SB" -o "$T/s2m.png" --json -q
n_m2m=$(masks)
expect_exit 0 "SAM 2: --everything without --m2m" -- "$S" -m "$S2" --everything --points-per-side 4 --stability-thresh 0 --nms-thresh 1 \
  --pred-iou-thresh 0.5 "$SB" -o "$T/s2n.png" --json -q
[ "$n_m2m" -ne "$(masks)" ] || fail "--m2m kept as many masks ($n_m2m) as the plain generator"
expect_exit 2 "--resume with -o (one image)" -- "$S" -m "$S2" --box 5,4,30,25 "$A" -o "$T/s2r.png" --resume
expect_exit 2 "--m2m without --everything" -- "$S" -m "$S2" --m2m --box 5,4,30,25 "$A" -o "$T/s2x.png"
stderr_has "--m2m goes with --everything" "the flag is named"
for v in 0x1p-1 inf nan; do
  expect_exit 2 "--pred-iou-thresh $v" -- "$S" -m "$S2" --everything --pred-iou-thresh "$v" "$SB" -o "$T/s2x.png"
  stderr_has "expected a decimal number, got '$v'" "a float option takes decimals only"
done
expect_exit 2 "--m2m with SAM v1" -- "$S" -m "$M" --everything --m2m --points-per-side 4 "$SB" -o "$T/s1m.png"
stderr_has "SAM v1" "SAM v1 has no m2m"
expect_exit 2 "SAM 2: no HQ-SAM decoder" -- "$S" -m "$S2" --hq on --box 5,4,30,25 "$A" -o "$T/s2h.png"

# Prompts from a label map: objects 1 and 2 (0 and 255 skipped), their tight boxes.
expect_exit 0 "--prompts-from, boxes" -- "$S" -m "$M" "$A" --prompts-from "$T/lab.pgm" --skip 0,255 -o "$T/lb.png" --json
grep -q '"objects":\[{"label":1,"box":\[5.0,4.0,29.0,24.0\]' "$T/.out" || fail "object 1's tight box: $(cat "$T/.out")"
grep -q '{"label":2,"box":\[32.0,10.0,49.0,35.0\]' "$T/.out" || fail "object 2's tight box"
grep -q '"fill":255' "$T/.out" || fail "label-map prompts fill with 255"
grep -q '"iou":[0-9.e-]*,"dice":[0-9.e-]*,"pa":[0-9.e-]*}' "$T/.out" || fail "each object is scored against its label's pixels"
stderr_has "2 object(s) against their label maps: mean IoU" "the run's mean IoU and Dice are printed"
expect_exit 0 "--prompts-from with 0 an object" -- "$S" -m "$M" "$A" --prompts-from "$T/lab.pgm" -o "$T/l3.png" --json -q
[ "$(grep -o '"label":' "$T/.out" | wc -l)" = 3 ] || fail "--skip 255 (the default) leaves objects 0, 1 and 2"
expect_exit 0 "seeded points" -- "$S" -m "$M" "$A" --prompts-from "$T/lab.pgm" --skip 0,255 --prompt-type points --points 2 \
  -s 4 -o "$T/pts1.png" --json -q
grep -o '"points":[][0-9.,]*' "$T/.out" >"$T/pts1"
[ -s "$T/pts1" ] || fail "the record lists no points"
expect_exit 0 "seeded points again" -- "$S" -m "$M" "$A" --prompts-from "$T/lab.pgm" --skip 0,255 --prompt-type points \
  --points 2 -s 4 -o "$T/pts2.png" --json -q
grep -o '"points":[][0-9.,]*' "$T/.out" >"$T/pts2"
cmp -s "$T/pts1" "$T/pts2" || fail "the same seed draws other points"
cmp -s "$T/pts1.png" "$T/pts2.png" || fail "the same seed gives another mask"
expect_exit 0 "another seed" -- "$S" -m "$M" "$A" --prompts-from "$T/lab.pgm" --skip 0,255 --prompt-type points \
  --points 2 -s 5 -o "$T/pts3.png" --json -q
grep -o '"points":[][0-9.,]*' "$T/.out" >"$T/pts3"
cmp -s "$T/pts1" "$T/pts3" && fail "another seed draws the same points"
expect_exit 0 "--skip 0: the fill is 0" -- "$S" -m "$M" "$A" --prompts-from "$T/lab.pgm" --skip 0 -o "$T/s0.png" --json -q
grep -q '"fill":0' "$T/.out" || fail "--skip 0 fills with 0"
grep -q '"label":255' "$T/.out" || fail "--skip 0 makes 255 an object"
expect_exit 0 "nothing but skipped values" -- "$S" -m "$M" "$A" --prompts-from "$T/lab.pgm" --skip 0,1,2,255 \
  -o "$T/none.png" --json -q
grep -q '"objects":\[\]' "$T/.out" || fail "no objects recorded"

# Segment everything: mask ids 1..N, the record lists them in that order.
expect_exit 0 "--everything" -- "$S" -m "$M" --everything --points-per-side 4 --points-per-batch 5 --pred-iou-thresh 0 \
  --stability-thresh 0 --nms-thresh 1 --json -q "$A" -o "$T/ev.png"
grep -q '"masks":\[{"id":1,"box":\[' "$T/.out" || fail "--everything records its masks: $(head -c 300 "$T/.out")"
[ "$(grep -o '"id":' "$T/.out" | wc -l)" = 48 ] || fail "16 points x 3 masks, none dropped: $(grep -o '"id":' "$T/.out" | wc -l)"
expect_exit 0 "--everything with the default filters" -- "$S" -m "$M" --everything --points-per-side 4 --json -q "$A" -o "$T/ev2.png"
expect_exit 2 "--everything with a prompt" -- "$S" -m "$M" --everything --point 1,1 "$A" -o "$T/x.png"
expect_exit 2 "--everything with --multimask" -- "$S" -m "$M" --everything --multimask "$A" -o "$T/x.png"
expect_exit 2 "--nms-thresh 2" -- "$S" -m "$M" --everything --nms-thresh 2 "$A" -o "$T/x.png"
expect_exit 2 "--points-per-side 0" -- "$S" -m "$M" --everything --points-per-side 0 "$A" -o "$T/x.png"
expect_exit 2 "--points-per-side 129 (ids past 65535)" -- "$S" -m "$M" --everything --points-per-side 129 "$A" -o "$T/x.png"

# Crop layers and the small-region clean-up (numbers: tests/nn/test_sam.cpp).
C=$N/sam_c.png  # 320x240
expect_exit 0 "--everything --crop-layers 1 --min-region-area" -- "$S" -m "$M" --everything --points-per-side 4 \
  --pred-iou-thresh 0 --stability-thresh 0.01 --crop-layers 1 --crop-points-downscale 2 --min-region-area 300 --json -q \
  "$C" -o "$T/crop.png"
grep -q '"crop":\[0,0,320,240\]' "$T/.out" || fail "--everything records each mask's crop: $(head -c 400 "$T/.out")"
[ "$(png_info "$T/crop.png")" = "320x240 depth 8 color 0" ] || fail "crop-layer map: $(png_info "$T/crop.png")"
expect_exit 0 "without the clean-up" -- "$S" -m "$M" --everything --points-per-side 4 --pred-iou-thresh 0 --stability-thresh 0.01 \
  --crop-layers 1 --crop-points-downscale 2 -q "$C" -o "$T/crop0.png"
same_pixels "$T/crop.png" "$T/crop0.png" && fail "--min-region-area 300 changed no mask of the tiny SAM's speckled ones"
EV="--everything --points-per-side 2 --pred-iou-thresh 0 --stability-thresh 0 --crop-layers 1"
expect_exit 0 "crop layers in a batch" -- "$S" -m "$M" $EV --min-region-area 30 "$A" -O "$T/evb" -q
expect_exit 0 "--resume with the same crop settings" -- "$S" -m "$M" $EV --min-region-area 30 "$A" -O "$T/evb" --resume
stderr_has "0 segmented, 1 already done" "--resume keeps a crop-layer map"
expect_exit 0 "--resume with another --min-region-area" -- "$S" -m "$M" $EV --min-region-area 31 "$A" -O "$T/evb" --resume
stderr_has "1 segmented, 0 already done" "another --min-region-area is made again"
expect_exit 2 "--crop-layers 5" -- "$S" -m "$M" --everything --crop-layers 5 "$A" -o "$T/x.png"
expect_exit 2 "--crop-overlap 1" -- "$S" -m "$M" --everything --crop-layers 1 --crop-overlap 1 "$A" -o "$T/x.png"
expect_exit 2 "--crop-nms-thresh -0.5" -- "$S" -m "$M" --everything --crop-nms-thresh -0.5 "$A" -o "$T/x.png"
expect_exit 2 "a crop layer with no point" -- "$S" -m "$M" --everything --points-per-side 3 --crop-layers 2 \
  --crop-points-downscale 2 "$A" -o "$T/x.png"
stderr_has "leaves crop layer 2 no point" "the refusal names the layer"
expect_exit 2 "ids past 65535 with crop layers" -- "$S" -m "$M" --everything --points-per-side 100 --crop-layers 1 \
  "$A" -o "$T/x.png"
stderr_has "ids stop at 65535" "the refusal says why"
expect_exit 2 "--points-per-side without --everything" -- "$S" -m "$M" --box 5,4,30,25 --points-per-side 4 "$A" -o "$T/x.png"
stderr_has "goes with --everything" "the refusal names the mode"
# Values attached to short options: "-m<dir with an s>" is no -s (--seed).
expect_exit 0 "attached short values" -- "$S" "-m$M" --everything --points-per-side 2 --pred-iou-thresh 0 \
  --stability-thresh 0 -q "$A" "-o$T/att.png"
expect_exit 2 "--crop-overlap without --crop-layers" -- "$S" -m "$M" --everything --crop-overlap 0.5 "$A" -o "$T/x.png"
expect_exit 2 "--seed with --everything" -- "$S" -m "$M" --everything --seed 3 "$A" -o "$T/x.png"
stderr_has "goes with --prompts-from" "--seed is read with --prompts-from only"
expect_exit 2 "--nms-thresh 1.0000001" -- "$S" -m "$M" --everything --nms-thresh 1.0000001 "$A" -o "$T/x.png"
stderr_has "1.0000001" "the refusal shows the value as given"
expect_exit 2 "--min-region-area -1" -- "$S" -m "$M" --everything --min-region-area -1 "$A" -o "$T/x.png"
[ -e "$T/x.png" ] && fail "a refused run wrote its output"

# RobustSAM (tests/nn/make_robust_sam_fixture.py; numbers: tests/nn/test_robust_sam.cpp).
R=$N/robust_sam_tiny
expect_exit 0 "RobustSAM folder" -- "$S" -m "$R" --box 20,10,110,80 --json -q "$N/sam_b.png" -o "$T/rob.png"
grep -q '"robust":true' "$T/.out" || fail "RobustSAM's robust path recorded: $(head -c 300 "$T/.out")"
expect_exit 0 "RobustSAM --robust off" -- "$S" -m "$R" --robust off --box 20,10,110,80 --json -q "$N/sam_b.png" \
  -o "$T/roboff.png"
grep -q '"robust":false' "$T/.out" || fail "--robust off recorded"
same_pixels "$T/rob.png" "$T/roboff.png" && fail "the robust path and SAM's tokens gave the same mask"
expect_exit 2 "--robust on, a plain SAM folder" -- "$S" -m "$M" --robust on --box 5,4,30,25 "$A" -o "$T/x.png"
expect_exit 2 "--everything on the robust path" -- "$S" -m "$R" --everything "$A" -o "$T/x.png"
stderr_has "--robust off" "the refusal names the way out"
expect_exit 0 "--everything with --robust off" -- "$S" -m "$R" --robust off --everything --points-per-side 2 -q "$A" \
  -o "$T/robev.png"
[ -e "$T/x.png" ] && fail "a refused run wrote its output"

# HQ-SAM (tests/nn/make_hq_sam_fixture.py; numbers: tests/nn/test_hq_sam.cpp).
H=$N/hq_sam_tiny
expect_exit 0 "HQ-SAM folder" -- "$S" -m "$H" --box 5,4,30,25 --json -q "$A" -o "$T/hq.png"
grep -q '"hq":true,"hq_token_only":false' "$T/.out" || fail "HQ-SAM's token recorded: $(head -c 300 "$T/.out")"
expect_exit 0 "--hq-token-only" -- "$S" -m "$H" --hq-token-only --box 5,4,30,25 -q "$A" -o "$T/hqo.png"
expect_exit 0 "--hq off" -- "$S" -m "$H" --hq off --box 5,4,30,25 -q "$A" -o "$T/hqoff.png"
same_pixels "$T/hq.png" "$T/hqoff.png" && fail "SAM plus HQ and SAM alone gave the same mask"
expect_exit 2 "--hq-token-only with --hq off" -- "$S" -m "$H" --hq off --hq-token-only --box 5,4,30,25 "$A" -o "$T/x.png"
expect_exit 2 "--hq on, a plain SAM folder" -- "$S" -m "$M" --hq on --box 5,4,30,25 "$A" -o "$T/x.png"
expect_exit 0 "--everything with HQ-SAM" -- "$S" -m "$H" --everything --points-per-side 4 --pred-iou-thresh 0 \
  --stability-thresh 0 --nms-thresh 1 --json -q "$A" -o "$T/hqev.png"
[ "$(grep -o '"id":' "$T/.out" | wc -l)" = 16 ] || fail "HQ-SAM keeps one mask per point: $(grep -o '"id":' "$T/.out" | wc -l)"
[ -e "$T/x.png" ] && fail "a refused run wrote its output"

# GleSAM: the enhancer runs; off, the folder is plain SAM (the same SAM weights).
expect_exit 0 "GleSAM folder" -- "$S" -m "$G" --box 5,4,30,25 --json -q "$A" -o "$T/g.png"
grep -q '"enhanced":true,"feat_weight":3.0' "$T/.out" || fail "GleSAM's enhancement and feature weight recorded"
expect_exit 0 "GleSAM folder, --enhance off" -- "$S" -m "$G" --enhance off --box 5,4,30,25 -q "$A" -o "$T/goff.png"
same_pixels "$T/goff.png" "$T/file.png" || fail "--enhance off differs from the plain SAM folder"

# GleSAM's folder as a user makes it: SD's UNet widened by rass-merge-lora
# expand-channels (x8 here: 4 -> 32 channels; GleSAM's x64 gives 256) in place
# of the fixture's, which the Python reference replicated itself.
if [ -x "$B/rass-merge-lora" ]; then
  expect_exit 0 "rass-merge-lora expand-channels 8" -- "$B/rass-merge-lora" expand-channels 8 --model "$N/sd_tiny" -O "$T/sd8"
  mkdir "$T/gle2"
  cp -r "$G/." "$T/gle2/"
  rm -r "$T/gle2/unet"
  cp -r "$T/sd8/unet" "$T/gle2/unet"
  expect_exit 0 "GleSAM folder with the widened UNet" -- "$S" -m "$T/gle2" --box 5,4,30,25 -q "$A" -o "$T/g2.png"
  same_pixels "$T/g2.png" "$T/g.png" || fail "the expand-channels UNet gives another mask than the reference's replication"
fi

# -O checks: "-" is no folder; an existing writable folder is enough even
# where its parent is not writable (checked as an unprivileged user: root
# may write anywhere).
expect_exit 2 "-O -" -- "$S" -m "$M" --box 5,4,30,25 "$A" -O -
[ -e ./- ] && fail "-O - made a folder named -"
if [ "$(id -u)" = 0 ] && command -v setpriv >/dev/null && setpriv --reuid=65534 --regid=65534 --clear-groups true 2>/dev/null; then
  chmod 755 "$T" && mkdir -p "$T/ro/w" && chown 65534 "$T/ro/w"
  # Only where that user can read the model, the image and the tool's own libraries.
  if setpriv --reuid=65534 --regid=65534 --clear-groups test -r "$M/sam.safetensors" -a -r "$A" &&
    setpriv --reuid=65534 --regid=65534 --clear-groups "$S" --help >/dev/null 2>&1; then
    expect_exit 0 "-O in a folder whose parent is not writable" -- setpriv --reuid=65534 --regid=65534 --clear-groups \
      "$S" -m "$M" --box 5,4,30,25 -q "$A" -O "$T/ro/w"
    [ -s "$T/ro/w/sam_a.png" ] || fail "the mask was written in the writable folder"
  else
    echo "note: -O permissions not checked (uid 65534 cannot run rass-sam or read its inputs here)"
  fi
else
  echo "note: -O permissions not checked (needs root and setpriv to run as an unprivileged user)"
fi

# Batch: two images, their label maps by key, --resume, --shard.
mkdir -p "$T/in" "$T/labs"
cp "$A" "$T/in/one.png"
cp "$A" "$T/in/two.png"
cp "$T/lab.pgm" "$T/labs/one.png"
cp "$T/lab.pgm" "$T/labs/two.png"
expect_exit 0 "batch" -- "$S" -m "$M" "$T/in" --prompts-from "$T/labs" --skip 0,255 -O "$T/out" --json -q
[ -f "$T/out/one.png" ] && [ -f "$T/out/two.png" ] || fail "batch outputs missing"
same_pixels "$T/out/one.png" "$T/lb.png" || fail "a batch item differs from the single run"
expect_exit 0 "--resume keeps both" -- "$S" -m "$M" "$T/in" --prompts-from "$T/labs" --skip 0,255 -O "$T/out" --resume
stderr_has "0 segmented, 2 already done" "--resume skips finished masks"
expect_exit 0 "--resume with --skip in another order" -- "$S" -m "$M" "$T/in" --prompts-from "$T/labs" --skip 255,0 \
  -O "$T/out" --resume
stderr_has "0 segmented, 2 already done" "--skip 255,0 is the same setting as 0,255"
expect_exit 0 "--resume with another --fill redoes both" -- "$S" -m "$M" "$T/in" --prompts-from "$T/labs" --skip 0,255 \
  --fill 0 -O "$T/out" --resume
stderr_has "2 segmented, 0 already done" "a changed setting is made again"
stderr_has "4 object(s) against their label maps" "the batch's objects are scored together"
expect_exit 0 "--shard 1/2" -- "$S" -m "$M" "$T/in" --prompts-from "$T/labs" --skip 0,255 -O "$T/sh" --shard 1/2 -q
[ "$(ls "$T/sh" | wc -l)" = 1 ] || fail "--shard 1/2 wrote $(ls "$T/sh" | wc -l) masks, expected 1"
rm "$T/labs/two.png"
expect_exit 3 "batch, one label map missing" -- "$S" -m "$M" "$T/in" --prompts-from "$T/labs" --skip 0,255 -O "$T/out2" -q
[ -f "$T/out2/one.png" ] || fail "the good item's mask is written"
[ -f "$T/out2/two.png" ] && fail "the item without a label map has a mask"
stderr_has "two.png" "the missing label map is named"
# A FIFO where an item's label map is found: a bad item (the batch blocked at its open).
mkfifo "$T/labs/two.png"
expect_exit 3 "batch, a FIFO for a label map" -- timeout 120 "$S" -m "$M" "$T/in" --prompts-from "$T/labs" --skip 0,255 -O "$T/out5" -q
stderr_has "two.png: is not a regular file but a FIFO" "names what is there"
[ -f "$T/out5/one.png" ] || fail "the good item's mask is written beside the FIFO's"
rm "$T/labs/two.png"

# An output must not land on a label map: -O above both folders, key lab/a.
mkdir -p "$T/cx/img/lab" "$T/cx/lab/lab"
cp "$A" "$T/cx/img/a.png"
cp "$A" "$T/cx/img/lab/a.png"
cp "$T/lab.pgm" "$T/cx/lab/a.png"
cp "$T/lab.pgm" "$T/cx/lab/lab/a.png"
expect_exit 2 "an output over another item's label map" -- "$S" -m "$M" "$T/cx/img" --prompts-from "$T/cx/lab" \
  --skip 0,255 -O "$T/cx" -q
cmp -s "$T/cx/lab/a.png" "$T/lab.pgm" || fail "a label map was overwritten"
# stdin's file is an input too.
cp "$T/lab.pgm" "$T/lab2.pgm"
expect_exit 2 "-o onto the label map read from stdin" -- bash -c "'$S' -m '$M' '$A' --prompts-from - --skip 0,255 -o '$T/lab2.pgm' <'$T/lab2.pgm'"
cmp -s "$T/lab2.pgm" "$T/lab.pgm" || fail "the label map read from stdin was overwritten"
expect_exit 0 "--prompts-from - " -- bash -c "'$S' -m '$M' '$A' --prompts-from - --skip 0,255 -o '$T/lstdin.png' <'$T/lab.pgm'"
same_pixels "$T/lstdin.png" "$T/lb.png" || fail "a label map from stdin gives another mask"
# bf16 on the CPU (the decoder's transposed convolutions stay fp32 there).
expect_exit 0 "bf16 on the CPU" -- "$S" -m "$M" --dtype bf16 --box 5,4,30,25 -q "$A" -o "$T/bf16.png"
expect_exit 0 "bf16 on the CPU, GleSAM" -- "$S" -m "$G" --dtype bf16 --box 5,4,30,25 -q "$A" -o "$T/gbf16.png"
# bf16 against fp32: the masks agree but for pixels near a decision (rass-eval-miou's pixel accuracy).
B2=$N/sam_b.png
if [ -x "$B/rass-eval-miou" ]; then
  for model in "$M" "$G"; do
    "$S" -m "$model" "$B2" --box 20,10,120,80 -q -o "$T/f32.png" && "$S" -m "$model" "$B2" --box 20,10,120,80 -q --dtype bf16 -o "$T/b16.png" ||
      fail "bf16/fp32 runs on $model failed"
    acc=$("$B/rass-eval-miou" -n 256 --ignore-index 254 "$T/b16.png" "$T/f32.png" --json -q | grep -o '"aAcc": [0-9.]*' | sed 's/.*: //')
    awk -v a="${acc:-0}" 'BEGIN { exit !(a >= 98) }' || fail "bf16 masks of $model agree with fp32 on only ${acc:-?}% of pixels"
  done
fi
expect_exit 2 "fp16 on the CPU" -- "$S" -m "$M" --dtype fp16 --box 5,4,30,25 -q "$A" -o "$T/x.png"

# Bad input: usage (2) and bad files (3), nothing written.
expect_exit 2 "no prompt" -- "$S" -m "$M" "$A" -o "$T/x.png"
expect_exit 2 "no model" -- "$S" "$A" --point 1,1 -o "$T/x.png"
expect_exit 2 "--prompts-from with --point" -- "$S" -m "$M" "$A" --prompts-from "$T/lab.pgm" --point 1,1 -o "$T/x.png"
expect_exit 2 "point outside the image" -- "$S" -m "$M" "$A" --point 60,5 -o "$T/x.png"
stderr_has "outside the 53x37 image" "the point and the image size are named"
expect_exit 2 "malformed point" -- "$S" -m "$M" "$A" --point 1,x -o "$T/x.png"
expect_exit 2 "point label 2" -- "$S" -m "$M" "$A" --point 1,1,2 -o "$T/x.png"
expect_exit 2 "box the wrong way round" -- "$S" -m "$M" "$A" --box 30,4,5,25 -o "$T/x.png"
expect_exit 2 "two boxes" -- "$S" -m "$M" "$A" --box 1,1,5,5 --box 2,2,6,6 -o "$T/x.png"
expect_exit 2 "bad --skip" -- "$S" -m "$M" "$A" --prompts-from "$T/lab.pgm" --skip 1,x -o "$T/x.png"
expect_exit 2 "--points 0" -- "$S" -m "$M" "$A" --prompts-from "$T/lab.pgm" --prompt-type points --points 0 -o "$T/x.png"
stderr_has "--points" "the flag is named"
# --points sets the drawn points: with --prompt-type box (the default) none
# are drawn (it was accepted and unused). --seed is accepted there: scripts
# (examples/eval-lqseg-sam.sh) pass theirs whatever the prompt type.
expect_exit 2 "--points with boxes" -- "$S" -m "$M" "$A" --prompts-from "$T/lab.pgm" --points 2 -o "$T/x.png"
stderr_has "the type is box" "says why"
expect_exit 2 "--shard with -o FILE" -- "$S" -m "$M" "$A" --box 5,4,30,25 -o "$T/x.png" --shard 1/2
stderr_has "--shard splits a batch" "the flag is named"
expect_exit 2 "--fill 255 with the flags' object 255" -- "$S" -m "$M" "$A" --point 1,1 --fill 255 -o "$T/x.png"
expect_exit 2 "--fill that an object may have" -- "$S" -m "$M" "$A" --prompts-from "$T/lab.pgm" --skip 0,255 --fill 1 -o "$T/x.png"
expect_exit 2 "--skip none without --fill" -- "$S" -m "$M" "$A" --prompts-from "$T/lab.pgm" --skip none -o "$T/x.png"
expect_exit 0 "--skip none with a --fill no pixel has" -- "$S" -m "$M" "$A" --prompts-from "$T/lab.pgm" --skip none --fill 7 -o "$T/sn.png" -q
# --skip none and a --fill that a pixel has: that object and the uncovered
# pixels would be one label (it was accepted, exit 0).
expect_exit 3 "--skip none with a --fill a pixel has" -- "$S" -m "$M" "$A" --prompts-from "$T/lab.pgm" --skip none --fill 1 -o "$T/x.png"
stderr_has "holds the value 1, an object here and the --fill value" "names the value"
expect_exit 2 "a hex point" -- "$S" -m "$M" "$A" --point 0x10,5 -o "$T/x.png"
expect_exit 2 "a point out of range" -- "$S" -m "$M" "$A" --point 1e309,5 -o "$T/x.png"
stderr_has "out of range" "an overflowing number is called so"
expect_exit 2 "257 points" -- "$S" -m "$M" "$A" $(for i in $(seq 257); do printf -- '--point 1,1 '; done) -o "$T/x.png"
expect_exit 2 "--enhance on without an enhancer" -- "$S" -m "$M" --enhance on "$A" --point 1,1 -o "$T/x.png"
stderr_has "has no enhancer" "--enhance on names the missing enhancer"
expect_exit 2 "a JPEG name" -- "$S" -m "$M" "$A" --point 1,1 -o "$T/x.jpg"
expect_exit 2 "output over the input" -- "$S" -m "$M" "$T/in/one.png" --point 1,1 -o "$T/in/one.png"
cmp -s "$T/in/one.png" "$A" || fail "the input was changed"
expect_exit 3 "not a SAM folder" -- "$S" -m "$N/sd_tiny" "$A" --point 1,1 -o "$T/x.png"
stderr_has "no sam.json" "the folder is named with what it lacks"
head -c 100 "$T/lab.pgm" >"$T/short.pgm"
expect_exit 3 "truncated label map" -- "$S" -m "$M" "$A" --prompts-from "$T/short.pgm" -o "$T/x.png"
{ printf 'P5\n10 10\n255\n'; head -c 100 /dev/zero; } >"$T/small.pgm"
expect_exit 3 "label map of another size" -- "$S" -m "$M" "$A" --prompts-from "$T/small.pgm" -o "$T/x.png"
stderr_has "is 10x10; its image is 53x37" "both sizes are named"
expect_exit 3 "an RGB label map" -- "$S" -m "$M" "$A" --prompts-from "$N/sam_b.png" -o "$T/x.png"
mkdir "$T/badm"
cp -r "$M/." "$T/badm/"
head -c 1000 "$M/sam.safetensors" >"$T/badm/sam.safetensors"
expect_exit 3 "truncated weights" -- "$S" -m "$T/badm" "$A" --point 1,1 -o "$T/x.png"
# A symlink loop in the weights' place: the reason, not "has no sam.safetensors".
mkdir "$T/loopm" && cp "$M/sam.json" "$T/loopm/" && ln -s sam.safetensors "$T/loopm/sam.safetensors"
expect_exit 3 "a symlink loop for the weights" -- "$S" -m "$T/loopm" "$A" --point 1,1 -o "$T/x.png"
stderr_has "symbolic links" "the loop is named"
# A FIFO in its place is refused, not waited on.
mkdir "$T/fifom" && cp "$M/sam.json" "$T/fifom/" && mkfifo "$T/fifom/sam.safetensors"
expect_exit 3 "a FIFO for the weights" -- timeout 20 "$S" -m "$T/fifom" "$A" --point 1,1 -o "$T/x.png"
stderr_has "not a regular file" "the FIFO is refused"
printf '{"architecture": "sam", "variant": "vit_h", "depth": 60000}' >"$T/badm/sam.json"
cp "$M/sam.safetensors" "$T/badm/sam.safetensors"
expect_exit 3 "sizes that do not fit the weights" -- "$S" -m "$T/badm" "$A" --point 1,1 -o "$T/x.png"
stderr_has "does not fit" "the config and the weights are named"
printf '{"architecture": "sam", "depth": 3}' >"$T/badm/sam.json"
expect_exit 3 "no variant and not every size" -- "$S" -m "$T/badm" "$A" --point 1,1 -o "$T/x.png"
stderr_has "missing image_size" "the missing sizes are named"
printf '{"architecture": "sam", "variant": "vit_b", "depth": 1.5}' >"$T/badm/sam.json"
expect_exit 3 "a fraction where a whole number belongs" -- "$S" -m "$T/badm" "$A" --point 1,1 -o "$T/x.png"
stderr_has "depth" "the key is named"
[ -e "$T/x.png" ] && fail "a failed run left an output"
finish
