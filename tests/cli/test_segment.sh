# rass-segment on the committed tiny RAS folder (tests/fixtures/nn/ras_tiny,
# random weights; made by tests/nn/make_ras_fixture.py + scripts/convert_rass.py)
# and on a rass-model init --preset tiny-seg folder: one image, stdin/stdout,
# every output, the record, batch with --resume/--jobs/--shard, both
# backbones, the pipeline rass-degrade -> rass-segment -> rass-eval-miou on
# the shipped examples, and bad inputs with their exit codes and no partial
# output. Numerical equality with the reference is tests/nn/test_segment.cpp.
. "$(dirname "$0")/lib.sh"
S=$B/rass-segment
[ -x "$S" ] || { echo "skipped: rass-segment not built (no LibTorch)"; exit 77; }
N=$FIX/nn
M=$N/ras_tiny
LQ=$N/ras_lq.png  # 40x30

npy_shape() { head -c 200 "$1" | tr -d '\0' | grep -ao "'shape': ([0-9, ]*)" | sed "s/'shape': //"; }
# png_info FILE: "WIDTHxHEIGHT depth D color C" from the IHDR chunk.
png_info() { od -An -tu1 -j16 -N10 "$1" | awk '{printf "%dx%d depth %d color %d", $1*16777216+$2*65536+$3*256+$4, $5*16777216+$6*65536+$7*256+$8, $9, $10}'; }
# zeros_npy FILE D0 D1 D2: a float32 .npy of zeros.
zeros_npy() {
  local h="{'descr': '<f4', 'fortran_order': False, 'shape': ($2, $3, $4), }"
  while [ $(( (10 + ${#h} + 1) % 64 )) -ne 0 ]; do h="$h "; done
  { printf '\x93NUMPY\x01\x00'; printf "\\x$(printf %02x $(( (${#h} + 1) % 256 )))\\x$(printf %02x $(( (${#h} + 1) / 256 )))"
    printf '%s\n' "$h"; head -c $(( $2 * $3 * $4 * 4 )) /dev/zero; } >"$1"
}

expect_exit 0 "one image, every output" -- "$S" -m "$M" "$LQ" -o "$T/lab.png" --color "$T/col.png" --overlay "$T/ov.png" \
  --logits-out "$T/logits.npy" --probs-out "$T/probs.npy" --tags <(printf 'tag one, tag two\n') --json
[ "$(png_info "$T/lab.png")" = "40x30 depth 8 color 0" ] || fail "label map: $(png_info "$T/lab.png"), expected 40x30 8-bit gray"
[ "$(png_info "$T/col.png")" = "40x30 depth 8 color 2" ] || fail "colour map: $(png_info "$T/col.png")"
[ "$(png_info "$T/ov.png")" = "40x30 depth 8 color 2" ] || fail "overlay: $(png_info "$T/ov.png")"
[ "$(npy_shape "$T/logits.npy")" = "(150, 30, 40)" ] || fail "logits shape $(npy_shape "$T/logits.npy")"
[ "$(npy_shape "$T/probs.npy")" = "(30, 40)" ] || fail "probs shape $(npy_shape "$T/probs.npy")"
grep -q '"prompt":"tag one tag two"' "$T/.out" || fail "rass prompt style (commas removed) is the model's default"
grep -q '"processed_size":\[683,512\]' "$T/.out" || fail "shortest edge to 512: 40x30 -> 683x512"
grep -q '"padded_size":\[688,512\]' "$T/.out" || fail "padded to a multiple of 8"
grep -q '"tiles":2' "$T/.out" || fail "two 512 windows over 688x512"
grep -q '"timestep":1' "$T/.out" || fail "timestep 1 recorded"

expect_exit 0 "stdin to stdout" -- bash -c "'$S' -m '$M' --no-resize --vae-mode -q - -o - <'$LQ' >'$T/pipe.png'"
expect_exit 0 "same with files" -- "$S" -m "$M" --no-resize --vae-mode -q "$LQ" -o "$T/file.png"
same_pixels "$T/pipe.png" "$T/file.png" || fail "stdin/stdout and files give different label maps"
expect_exit 0 "same seed, same sample" -- "$S" -m "$M" --no-resize -s 7 -q "$LQ" -o "$T/s7a.png"
expect_exit 0 "again" -- "$S" -m "$M" --no-resize -s 7 -q --threads 1 "$LQ" -o "$T/s7b.png"
cmp -s "$T/s7a.png" "$T/s7b.png" || fail "the keyed latent sample is not reproducible"
expect_exit 0 "--whole" -- "$S" -m "$M" --whole --json -q "$LQ" -o "$T/whole.png"
grep -q '"tiles":1' "$T/.out" || fail "--whole: one pass"
expect_exit 0 "bf16 on CPU" -- "$S" -m "$M" --no-resize --dtype bf16 -q "$LQ" -o "$T/bf16.png"
expect_exit 0 "--timings" -- "$S" -m "$M" --no-resize --vae-mode -q --timings "$LQ" -o "$T/timed.png"
for s in "text encoder" "upload" "vae encoder" "unet" "projection" "window blending" "head" "post (labels, scores)" \
         "download" "write" "(all stages)"; do
  stderr_has "$s" "--timings names '$s'"
done
cmp -s "$T/timed.png" "$T/file.png" || fail "--timings changed the labels"

# --latent-in: the UNet starts from the given latent ([4, 64/8, 40/8] for the 40x30 image padded to 40x32).
zeros_npy "$T/z.npy" 4 4 5
expect_exit 0 "--latent-in" -- "$S" -m "$M" --no-resize --latent-in "$T/z.npy" --json -q "$LQ" -o "$T/zl.png"
grep -q '"latent":"given"' "$T/.out" || fail "the record says the latent was given"
zeros_npy "$T/zbad.npy" 4 4 4
expect_exit 3 "wrong latent size" -- "$S" -m "$M" --no-resize --latent-in "$T/zbad.npy" -q "$LQ" -o "$T/x1.png"
stderr_has "[4, 4, 5]" "the message gives the expected shape"
printf 'not a npy' >"$T/corrupt.npy"
expect_exit 3 "corrupt latent" -- "$S" -m "$M" --no-resize --latent-in "$T/corrupt.npy" -q "$LQ" -o "$T/x2.png"
stderr_has "corrupt.npy" "the message names the file"
[ ! -e "$T/x1.png" ] && [ ! -e "$T/x2.png" ] || fail "a failed run left an output"

# Bad models and class lists.
expect_exit 3 "a restore folder is not a segmentation model" -- "$S" -m "$N/sd_tiny" -q "$LQ" -o "$T/x3.png"
stderr_has "segment.json" "the message names segment.json"
mkdir -p "$T/other" && cp -r "$M"/. "$T/other/" && sed -i 's/"architecture": "rass"/"architecture": "mask2former-swin"/' "$T/other/segment.json"
expect_exit 3 "another architecture" -- "$S" -m "$T/other" -q "$LQ" -o "$T/x4.png"
stderr_has "mask2former-swin" "the message names the architecture"
expect_exit 3 "class count differs from the head's" -- "$S" -m "$M" --classes voc -q "$LQ" -o "$T/x5.png"
stderr_has "21 class names" "the message gives both counts"
stderr_has "150 classes" "the message gives the head's count"
cp -r "$M" "$T/wronghead" && printf 'x' >>"$T/wronghead/seg_head.safetensors"
expect_exit 3 "damaged head weights" -- "$S" -m "$T/wronghead" -q "$LQ" -o "$T/x6.png"
expect_exit 3 "--backbone plain without unet_plain/" -- "$S" -m "$M" --backbone plain -q "$LQ" -o "$T/x7.png"
stderr_has "unet_plain" "the message names the missing folder"
expect_exit 2 "--window not tiling the features" -- "$S" -m "$M" --no-resize --window 24 -q "$IMG/chelsea.png" -o "$T/x8.png"
expect_exit 2 "output over the input" -- "$S" -m "$M" -q "$T/lab.png" -o "$T/lab.png"
expect_exit 2 "no output" -- "$S" -m "$M" -q "$LQ"
# Outputs are PNG: a .jpg name got PNG bytes (and a lossy label map is no label map).
expect_exit 2 "-o a .jpg name" -- "$S" -m "$M" -q "$LQ" -o "$T/lab.jpg"
stderr_has "writes PNG" "the format is named"
expect_exit 2 "--color a .ppm name" -- "$S" -m "$M" -q "$LQ" -o "$T/lab2.png" --color "$T/col.ppm"
[ ! -e "$T/lab.jpg" ] && [ ! -e "$T/lab2.png" ] || fail "an output beside a refused name"
expect_exit 2 "RASS_UPSAMPLE_PHASES=yes" -- env RASS_UPSAMPLE_PHASES=yes "$S" -m "$M" -q "$LQ" -o "$T/never.png"
stderr_has "RASS_UPSAMPLE_PHASES=yes: expected 0" "the bad switch value is named"
[ -e "$T/never.png" ] && fail "RASS_UPSAMPLE_PHASES=yes: an output was written"
expect_exit 2 "RASS_FUSED_NORM=on" -- env RASS_FUSED_NORM=on "$S" -m "$M" -q "$LQ" -o "$T/never.png"
stderr_has "RASS_FUSED_NORM=on: expected 0" "the bad switch value is named"
[ -e "$T/never.png" ] && fail "RASS_FUSED_NORM=on: an output was written"
for f in x3 x4 x5 x6 x7 x8; do [ ! -e "$T/$f.png" ] || fail "$f.png left behind"; done

# Both backbones on a rass-model init --preset tiny-seg folder.
if [ -x "$B/rass-model" ]; then
  expect_exit 0 "init tiny-seg" -- "$B/rass-model" init --preset tiny-seg -q "$T/seg"
  expect_exit 0 "ras backbone" -- "$S" -m "$T/seg" --no-resize --vae-mode --logits-out "$T/ras.npy" -q "$LQ" -o "$T/ras.png"
  expect_exit 0 "plain backbone" -- "$S" -m "$T/seg" --backbone plain --no-resize --vae-mode --logits-out "$T/plain.npy" -q "$LQ" -o "$T/plain.png"
  cmp -s "$T/ras.npy" "$T/plain.npy" && fail "the two backbones give the same scores"
fi

# Batch: -O, --resume, --jobs, --shard, per-item latents and outputs.
mkdir -p "$T/in" && cp "$LQ" "$T/in/a.png" && cp "$LQ" "$T/in/b.png"
expect_exit 0 "batch" -- "$S" -m "$M" --no-resize --vae-mode -j 2 "$T/in" -O "$T/outb" --color "$T/colb" --json -q
[ -s "$T/outb/a.png" ] && [ -s "$T/outb/b.png" ] && [ -s "$T/colb/a.png" ] || fail "batch outputs missing"
same_pixels "$T/outb/a.png" "$T/file.png" || fail "batch item differs from the single run"
[ "$(grep -c '"tool":"rass-segment"' "$T/.out")" = 2 ] || fail "two records"
expect_exit 0 "resume" -- "$S" -m "$M" --no-resize --vae-mode "$T/in" -O "$T/outb" --color "$T/colb" --resume --json -q
[ "$(grep -c '"skipped":true' "$T/.out")" = 2 ] || fail "--resume skips finished items"
# A label map records its settings ("rass" PNG chunk): --resume with other
# settings makes the items again instead of keeping them as done.
grep -qa '"tool":"rass-segment"' "$T/outb/a.png" || fail "no settings in the label map"
expect_exit 0 "resume with another window" -- "$S" -m "$M" --no-resize --vae-mode --window 32 "$T/in" -O "$T/outb" --color "$T/colb" --resume --json
[ "$(grep -c '"skipped":true' "$T/.out")" = 0 ] || fail "--resume kept label maps of another window"
stderr_has "other window" "what differs is named"
# Per-item latents (--latent-in DIR): a given latent draws nothing, so
# another seed keeps the items; another latent's bytes make them again.
mkdir -p "$T/lats" && zeros_npy "$T/lats/a.npy" 4 4 5 && zeros_npy "$T/lats/b.npy" 4 4 5
expect_exit 0 "batch --latent-in" -- "$S" -m "$M" --no-resize -s 1 --latent-in "$T/lats" "$T/in" -O "$T/outl" -q
same_pixels "$T/outl/a.png" "$T/zl.png" || fail "the batch item with a given latent differs from the single run"
expect_exit 0 "resume --latent-in with another seed" -- "$S" -m "$M" --no-resize -s 2 --latent-in "$T/lats" "$T/in" -O "$T/outl" --resume
stderr_has "0 segmented, 2 already done" "a given latent: the seed does not count"
printf '\x3f' | dd of="$T/lats/b.npy" bs=1 seek=$(( $(stat -c %s "$T/lats/b.npy") - 1 )) conv=notrunc 2>/dev/null
expect_exit 0 "resume --latent-in with another latent" -- "$S" -m "$M" --no-resize -s 2 --latent-in "$T/lats" "$T/in" -O "$T/outl" --resume
stderr_has "1 segmented, 1 already done" "a changed latent is made again"
expect_exit 0 "shard 1/2" -- "$S" -m "$M" --no-resize --vae-mode "$T/in" -O "$T/outs" --shard 1/2 -q
[ -s "$T/outs/b.png" ] && [ ! -e "$T/outs/a.png" ] || fail "shard 1/2 (0-based) segments the second key only"
# --batch: windows of several items per backbone call; the same label maps as
# one at a time (sampled latents: each item keeps its own draws). A bad item
# in a batch fails alone (exit 3), the others are written.
mkdir -p "$T/inb" && cp "$LQ" "$T/inb/a.png" && cp "$LQ" "$T/inb/b.png" && cp "$IMG/chelsea.png" "$T/inb/c.png"
expect_exit 0 "one at a time" -- "$S" -m "$M" --no-resize --window 32 -s 4 "$T/inb" -O "$T/one" -q
expect_exit 0 "--batch 3" -- "$S" -m "$M" --no-resize --window 32 -s 4 --batch 3 "$T/inb" -O "$T/three" -q
for k in a b c; do cmp -s "$T/one/$k.png" "$T/three/$k.png" || fail "--batch 3 changed $k's label map"; done
cmp -s "$T/one/a.png" "$T/one/b.png" && fail "a and b (different keys) should draw different latents"
printf 'not a png' > "$T/inb/bad.png"
expect_exit 3 "--batch with a bad item" -- "$S" -m "$M" --no-resize --window 32 -s 4 --batch 4 "$T/inb" -O "$T/withbad" -q
for k in a b c; do cmp -s "$T/one/$k.png" "$T/withbad/$k.png" || fail "a bad item in the batch changed $k"; done
grep -q "bad.png" "$T/.err" || fail "the bad item is not named: $(cat "$T/.err")"
expect_exit 2 "--batch 0" -- "$S" -m "$M" --batch 0 "$T/inb" -O "$T/zero" -q

# The pipeline on the shipped examples: degrade, segment HQ (the reference
# labels) and LQ, score LQ against HQ with rass-eval-miou (ADE20K names, the
# mmseg convention: predictions are class indices 0..149).
if [ -x "$B/rass-degrade" ] && [ -x "$B/rass-eval-miou" ]; then
  mkdir -p "$T/hq" && cp "$IMG/chelsea.png" "$IMG/coffee.png" "$T/hq/"
  expect_exit 0 "degrade" -- "$B/rass-degrade" -p rass -s 1 "$T/hq" -o "$T/lq" -q
  expect_exit 0 "segment HQ" -- "$S" -m "$M" -q "$T/hq" -O "$T/seg_hq"
  expect_exit 0 "segment LQ" -- "$S" -m "$M" -q "$T/lq" -O "$T/seg_lq"
  expect_exit 0 "eval-miou LQ vs HQ" -- "$B/rass-eval-miou" --classes ade20k "$T/seg_lq" "$T/seg_hq" --json -q
  grep -q '"mIoU"' "$T/.out" || fail "eval-miou gives an mIoU"
fi
finish
