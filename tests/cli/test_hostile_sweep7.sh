# The leftovers of the hostile sweeps of 2026-12-03, fixed on 2026-12-04,
# each case failing on the binaries before its fix:
# 1. --tags in one-line-per-input form took lines past the last input (a
#    stray blank line shifted every later prompt by one, without a word);
# 2. rass-degrade: --blur-prob (first order) was checked but never used, and
#    images under 21 px were refused even with every blur switched off;
# 3. a PNM comment right after maxval ("255#c\n", as libnetpbm reads it) was
#    refused;
# 4. rass-train took seeds from 2^63 up as "not non-negative", and a
#    negative selftest.init_seed;
# 5. a NUL in a manifest key cut the message there;
# 6. (a flag-efficacy sweep) rass-caption-map --resume kept packs made with
#    another --senses or --table (other masks, the same prompt);
#    rass-scenes --list-classes ignored --json; rass-degrade took
#    --out-quality for PNG outputs, --png-level for JPEG ones and
#    --upsample-mode with nothing resized back, without a word;
# 7. (an audit against REFERENCE.md) rass-restore ran large images whole
#    unless --tile was given; OSEDiff's test script tiles them.
. "$(dirname "$0")/lib.sh"
for t in rass-restore rass-segment rass-degrade rass-eval-iqa rass-eval-miou rass-train rass-scenes rass-caption-map; do
  [ -x "$B/$t" ] || { echo "skipped: $t not built"; exit 77; }
done
"$B/rass-scenes" -n 2 --size 64 -o "$T/sc" -q || { fail "rass-scenes"; finish; }
IMG1=$T/sc/images/scene_000000.png
LAB1=$T/sc/labels/scene_000000.png

# 1. Positional tag lines: one per input; trailing blank lines are fine.
printf 'sky\n\nroad\n' >"$T/stray.txt"
for tool in rass-segment rass-restore; do
  small=(); [ "$tool" = rass-restore ] && small=(--process-size 16)
  expect_exit 3 "$tool batch --tags with a line past the last input" -- \
    "$B/$tool" --tags "$T/stray.txt" "$T/sc/images" -O "$T/o-$tool" -q "${small[@]}"
  stderr_has "stray.txt: line 3 has tags but there are 2 input(s)" "the file and line are named"
  [ -z "$(ls "$T/o-$tool" 2>/dev/null | grep -v '^\.rass-lock')" ] || fail "$tool wrote outputs for a refused tag file"
  expect_exit 3 "$tool single --tags with two lines" -- "$B/$tool" --tags <(printf 'sky\nroad\n') "$IMG1" -o "$T/one.png" -q
  stderr_has "line 2 has tags but there are 1 input(s)" "the line is named"
  [ ! -e "$T/one.png" ] || fail "$tool wrote an image for a refused tag file"
  expect_exit 0 "$tool batch --tags ending in blank lines" -- \
    "$B/$tool" --tags <(printf 'sky\nroad\n\n\n') "$T/sc/images" -O "$T/p-$tool" -q "${small[@]}"
  expect_exit 0 "$tool shard 1/2 with one line per input" -- \
    "$B/$tool" --tags <(printf 'sky\nroad\n') "$T/sc/images" -O "$T/s-$tool" -q --shard 1/2 "${small[@]}"
done

# 2. rass-degrade's first-order blur probability and the smallest image.
expect_exit 0 "degrade --blur-prob 0" -- "$B/rass-degrade" "$IMG1" -o "$T/d.png" --blur-prob 0 --record "$T/d.json" -q
tr -d ' \n' <"$T/d.json" >"$T/d.min"
grep -q '{"stage":"blur1","reason":"probability"}' "$T/d.min" || fail "blur1 not skipped by probability: $(head -c 600 "$T/d.min")"
expect_exit 0 "degrade --blur-prob 1 (the reference)" -- "$B/rass-degrade" "$IMG1" -o "$T/d1.png" --record "$T/d1.json" -q
tr -d ' \n' <"$T/d1.json" >"$T/d1.min"
grep -q '"ops":\[{"stage":"blur1"' "$T/d1.min" || fail "the reference run does not start with blur1: $(head -c 600 "$T/d1.min")"
{ printf 'P6 8 8 255\n'; head -c 192 /dev/zero | tr '\0' '\100'; } >"$T/tiny.ppm"
expect_exit 0 "degrade an 8 px image with every blur off" -- "$B/rass-degrade" "$T/tiny.ppm" \
  -o "$T/t.png" --blur-prob 0 --second-blur-prob 0 --final-sinc-prob 0 -q
expect_exit 0 "degrade an 8 px image with the blurs dropped by --stages" -- "$B/rass-degrade" \
  "$T/tiny.ppm" -o "$T/t2.png" --stages -blur,-sinc -q
expect_exit 3 "degrade an 8 px image with the final sinc on" -- "$B/rass-degrade" "$T/tiny.ppm" \
  -o "$T/t3.png" --stages -blur -q
stderr_has "blur kernel of preset rass" "the kernel is the reason"

# 6b. rass-degrade warns of encoder and resize options that cannot apply.
expect_exit 0 "degrade PNG --out-quality" -- "$B/rass-degrade" "$IMG1" -o "$T/w.png" --out-quality 10
stderr_has "warning: --out-quality applies to JPEG outputs; these are png" "the option is named"
expect_exit 0 "degrade JPEG --png-level" -- "$B/rass-degrade" "$IMG1" -o "$T/w.jpg" --png-level 9
stderr_has "warning: --png-level applies to PNG outputs; these are jpeg" "the option is named"
expect_exit 0 "degrade --upsample-mode at scale 1" -- "$B/rass-degrade" "$IMG1" -o "$T/w2.png" --upsample-mode nearest
stderr_has "warning: --upsample-mode applies with --lq-size hq" "the option is named"
expect_exit 0 "degrade lqseg-2 --upsample-mode (it applies)" -- "$B/rass-degrade" "$IMG1" -o "$T/w3.png" -p lqseg-2 --upsample-mode nearest
grep -q warning "$T/.err" && fail "a warning for an option that applies: $(cat "$T/.err")"
expect_exit 0 "degrade batch JPEG --png-level -q" -- "$B/rass-degrade" "$T/sc/images" -o "$T/wd" -f jpeg --png-level 9 -q
[ -s "$T/.err" ] && fail "-q still warned: $(cat "$T/.err")"

# 3. PNM: a comment right after maxval ends the header at its line end.
printf 'P5 2 2 255#made by x\n\001\002\003\004' >"$T/c.pgm"
printf 'P5 2 2 255\n\001\002\003\004' >"$T/p.pgm"
expect_exit 0 "eval-iqa reads a comment after maxval" -- "$B/rass-eval-iqa" -m psnr "$T/c.pgm" "$T/p.pgm" --json
grep -q '"psnr": 80.0' "$T/.out" || fail "not equal pixels (pyiqa's PSNR of equal images is 80): $(cat "$T/.out")"

# 4. rass-train seeds.
expect_exit 0 "train --seed 2^63" -- "$B/rass-train" selftest -o "$T/tr" --steps 2 --seed 9223372036854775808 -q
expect_exit 0 "train --set loop.seed=2^64-1" -- "$B/rass-train" selftest -o "$T/tr2" --steps 2 --set loop.seed=18446744073709551615 -q
expect_exit 2 "train --set selftest.init_seed=-1" -- "$B/rass-train" selftest -o "$T/tr3" --steps 2 --set selftest.init_seed=-1 -q
stderr_has "selftest.init_seed' must not be negative, got -1" "the setting is named"

# 5. A NUL in a manifest key is shown as \0, not cut.
printf '{"key": "a\\u0000b", "pred": "%s", "gt": "%s"}\n{"key": "a\\u0000b", "pred": "%s", "gt": "%s"}\n' \
  "$LAB1" "$LAB1" "$LAB1" "$LAB1" >"$T/nul.jsonl"
expect_exit 3 "eval-miou manifest with a NUL key twice" -- "$B/rass-eval-miou" -n 150 --manifest "$T/nul.jsonl" -q
stderr_has 'a\0b' "the key is shown whole"

# 6. caption-map --resume: "avenue" is road with every WordNet sense, a path
# (no pixels here) with the first only; the prompt is the same.
TK=$SRC/tests/fixtures/nn/sd_tiny
printf 'scene_000000\tavenue, puppy\nscene_000001\tavenue, puppy\n' >"$T/tt.tsv"
expect_exit 0 "caption-map batch" -- "$B/rass-caption-map" "$T/sc/labels" --tags "$T/tt.tsv" --tokenizer "$TK" -O "$T/cm" -q
cp "$T/cm/scene_000000.h5" "$T/all_senses.h5"
expect_exit 0 "caption-map --senses 1 alone" -- "$B/rass-caption-map" "$T/sc/labels" --tags "$T/tt.tsv" --tokenizer "$TK" -O "$T/cm1" --senses 1 -q
cmp -s "$T/cm1/scene_000000.h5" "$T/all_senses.h5" && fail "--senses 1 makes the same pack (the case shows nothing)"
expect_exit 0 "caption-map --resume --senses 1" -- "$B/rass-caption-map" "$T/sc/labels" --tags "$T/tt.tsv" --tokenizer "$TK" -O "$T/cm" --senses 1 --resume -q
cmp -s "$T/cm/scene_000000.h5" "$T/cm1/scene_000000.h5" || fail "--resume kept the pack made with all senses"
touch -d 2000-01-01 "$T/cm/scene_000001.h5"
expect_exit 0 "caption-map --resume, same settings" -- "$B/rass-caption-map" "$T/sc/labels" --tags "$T/tt.tsv" --tokenizer "$TK" -O "$T/cm" --senses 1 --resume -q
[ "$(stat -c %Y "$T/cm/scene_000001.h5")" = "$(date -d 2000-01-01 +%s)" ] || fail "a pack equal to this run's was rewritten"
expect_exit 0 "scenes --list-classes" -- "$B/rass-scenes" --list-classes
IFS=$'\t' read -r name label <"$T/.out"
expect_exit 0 "scenes --list-classes --json" -- "$B/rass-scenes" --list-classes --json
[ "$(head -1 "$T/.out")" = "{\"class\":\"$name\",\"label\":$label}" ] || fail "not JSON lines: $(head -2 "$T/.out")"
[ "$(wc -l <"$T/.out")" -gt 10 ] || fail "one line per class"

# 7. Tiling by default. The tiny model (VAE factor 8) with 4-pixel latent
# tiles: a 64 px image has an 8x8 latent, over the 4^2 threshold.
SD=$SRC/tests/fixtures/nn/sd_tiny
RT=(-m "$SD" --size-policy pad --vae-mode -q --tile-size 4 --tile-overlap 2)
expect_exit 0 "restore, default tiling" -- "$B/rass-restore" "${RT[@]}" "$IMG1" -o "$T/def.png"
expect_exit 0 "restore --tile" -- "$B/rass-restore" "${RT[@]}" --tile "$IMG1" -o "$T/tile.png"
expect_exit 0 "restore --no-tile" -- "$B/rass-restore" "${RT[@]}" --no-tile "$IMG1" -o "$T/whole.png"
same_pixels "$T/def.png" "$T/tile.png" || fail "the default is not --tile"
same_pixels "$T/def.png" "$T/whole.png" && fail "tiles changed nothing (the case shows nothing)"
expect_exit 2 "restore --tile --no-tile" -- "$B/rass-restore" "${RT[@]}" --tile --no-tile "$IMG1" -o "$T/x.png"
expect_exit 0 "restore --attn-out runs whole by default" -- "$B/rass-restore" "${RT[@]}" "$IMG1" -o "$T/att.png" --attn-out "$T/att.npy"
# (The map-capturing attention rounds apart from the fused one on some CPUs.)
close_pixels "$T/att.png" "$T/whole.png" || fail "--attn-out did not run the image whole"
close_pixels "$T/att.png" "$T/def.png" && fail "the tiled image is as close (the check shows nothing)"
# Under the thresholds (the default 96-pixel latent tiles): an output made
# with --no-tile is kept by a default --resume, it has the same pixels.
mkdir -p "$T/small"; cp "$IMG1" "$T/small/"
expect_exit 0 "restore --no-tile, small" -- "$B/rass-restore" -m "$SD" --size-policy pad --vae-mode -q --no-tile "$T/small" -O "$T/rs"
touch -d 2000-01-01 "$T/rs/scene_000000.png"
expect_exit 0 "restore --resume, default tiling, small" -- "$B/rass-restore" -m "$SD" --size-policy pad --vae-mode -q --resume "$T/small" -O "$T/rs"
[ "$(stat -c %Y "$T/rs/scene_000000.png")" = "$(date -d 2000-01-01 +%s)" ] || fail "an untiled output under the thresholds was made again"
expect_exit 0 "restore --resume with tiles that apply" -- "$B/rass-restore" "${RT[@]}" --resume "$T/small" -O "$T/rs"
[ "$(stat -c %Y "$T/rs/scene_000000.png")" = "$(date -d 2000-01-01 +%s)" ] && fail "an untiled output was kept for a tiled run"
same_pixels "$T/rs/scene_000000.png" "$T/def.png" || fail "the redone output is not the tiled one"
# Only the VAE half that runs tiled is recorded: at 160 px the encoder tiles
# (160 > 64 + 2*32) and the decoder (20 latent px) runs whole with either
# decoder tile, so the second run keeps the first's output.
mkdir -p "$T/mid"; "$B/rass-scenes" -n 1 --size 160 -o "$T/sc160" -q && cp "$T/sc160/images/scene_000000.png" "$T/mid/"
V=(-m "$SD" --size-policy pad --vae-mode -q --tile-size 32 --tile-overlap 8)
expect_exit 0 "restore --vae-tile 64,8" -- "$B/rass-restore" "${V[@]}" --vae-tile 64,8 "$T/mid" -O "$T/rv"
touch -d 2000-01-01 "$T/rv/scene_000000.png"
expect_exit 0 "restore --resume --vae-tile 64,100" -- "$B/rass-restore" "${V[@]}" --vae-tile 64,100 --resume "$T/mid" -O "$T/rv"
[ "$(stat -c %Y "$T/rv/scene_000000.png")" = "$(date -d 2000-01-01 +%s)" ] || fail "another tile of a VAE half that ran whole redid the output"
expect_exit 0 "restore --resume --vae-tile 96,8" -- "$B/rass-restore" "${V[@]}" --vae-tile 96,8 --resume "$T/mid" -O "$T/rv"
[ "$(stat -c %Y "$T/rv/scene_000000.png")" = "$(date -d 2000-01-01 +%s)" ] && fail "another encoder tile kept the output"
# A JPEG with stray bytes between markers (libjpeg skips them): its header
# size is the decoder's, so the settings agree with what ran.
mkdir -p "$T/jp"
"$B/rass-degrade" "$IMG1" -p jpeg -o "$T/plain.jpg" -q
read -r hi lo < <(od -An -tu1 -j4 -N2 "$T/plain.jpg")  # the first segment's length (APP0 or DQT)
cut=$((4 + hi * 256 + lo))
{ head -c "$cut" "$T/plain.jpg"; printf '\000\023\067'; tail -c +$((cut + 1)) "$T/plain.jpg"; } >"$T/jp/stray.jpg"
expect_exit 0 "restore --no-tile, a JPEG with stray bytes" -- "$B/rass-restore" -m "$SD" --size-policy pad --vae-mode -q --no-tile "$T/jp" -O "$T/rj"
touch -d 2000-01-01 "$T/rj/stray.png"
expect_exit 0 "restore --resume, default tiling" -- "$B/rass-restore" -m "$SD" --size-policy pad --vae-mode -q --resume "$T/jp" -O "$T/rj"
[ "$(stat -c %Y "$T/rj/stray.png")" = "$(date -d 2000-01-01 +%s)" ] || fail "the JPEG's output was made again (its header size was not read)"
finish
