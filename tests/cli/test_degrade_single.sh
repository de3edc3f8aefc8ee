# rass-degrade on one image: files, pipes, replay, presets, records.
. "$(dirname "$0")/lib.sh"
D=$B/rass-degrade

expect_exit 0 "single image" -- "$D" "$IMG/chelsea.png" -o "$T/lq.png" --record "$T/rec.json" -s 7
[ -s "$T/lq.png" ] || fail "no LQ image written"
grep -q '"key": "chelsea"' "$T/rec.json" || fail "record lacks the key"
for field in '"kernel"' '"sigma_x"' '"theta"' '"factor"' '"mode"' '"quality"' '"final_order"' '"seed"'; do
  grep -qF "$field" "$T/rec.json" || fail "record lacks $field"
done

expect_exit 0 "replay" -- "$D" "$IMG/chelsea.png" --replay "$T/rec.json" -o "$T/replay.png"
cmp -s "$T/lq.png" "$T/replay.png" && ok "replay gives the same bytes" || fail "replay differs"

expect_exit 0 "same seed twice" -- "$D" "$IMG/chelsea.png" -o "$T/again.png" -s 7
cmp -s "$T/lq.png" "$T/again.png" && ok "deterministic" || fail "same seed gave different bytes"
expect_exit 0 "other seed" -- "$D" "$IMG/chelsea.png" -o "$T/other.png" -s 8
cmp -s "$T/lq.png" "$T/other.png" && fail "different seeds gave the same bytes"

# Pipes: - in, - out; the key of stdin must be given to match a file run.
"$D" - -o - -s 7 --key chelsea <"$IMG/chelsea.png" >"$T/pipe.png" && cmp -s "$T/pipe.png" "$T/lq.png" \
  && ok "stdin -> stdout equals the file run" || fail "pipe output differs"
cat "$IMG/rocket.jpg" | "$D" - -o - -f jpeg -p jpeg --severity 5 | "$D" - -o "$T/chain.png" -p noise \
  && ok "tools chain through pipes" || fail "pipe chain"

# Presets and sizes.
expect_exit 0 "x4 preset" -- "$D" "$IMG/chelsea.png" -o "$T/x4.png" -p realesrgan-x4 --json
grep -q '"width": 112' "$T/.out" || fail "x4 output width should be 451//4 = 112"
expect_exit 0 "lqseg-3 keeps the HQ size" -- "$D" "$IMG/chelsea.png" -o "$T/l3.png" -p lqseg-3 --json
grep -A3 '"output"' "$T/.out" | grep -q '"width": 451' || fail "lqseg-3 output should be 451 wide"
# glesam: a factor drawn per image (in the record), the LQ at the HQ size;
# --scale N fixes it; the record replays byte for byte.
expect_exit 0 "glesam keeps the HQ size" -- "$D" "$IMG/chelsea.png" -o "$T/g.png" -p glesam -s 5 --record "$T/g.json" --json
grep -A3 '"output"' "$T/.out" | grep -q '"width": 451' || fail "glesam output should be 451 wide"
grep -q '"scale": [1-4]' "$T/g.json" || fail "the record holds the drawn scale: $(grep scale "$T/g.json")"
expect_exit 0 "glesam replay" -- "$D" "$IMG/chelsea.png" --replay "$T/g.json" -o "$T/g2.png"
cmp -s "$T/g.png" "$T/g2.png" || fail "glesam replay differs"
expect_exit 0 "glesam --scale 2" -- "$D" "$IMG/chelsea.png" -o "$T/g3.png" -p glesam --scale 2 -s 5 --record "$T/g3.json"
grep -q '"scale": 2' "$T/g3.json" || fail "--scale 2 does not fix glesam's scale"
expect_exit 0 "lqseg-3 at LQ size" -- "$D" "$IMG/chelsea.png" -o "$T/l3n.png" -p lqseg-3 --lq-size native --json
grep -A3 '"output"' "$T/.out" | grep -q '"width": 112' || fail "lqseg-3 native should be 112 wide"
for p in blur noise jpeg downsample; do
  expect_exit 0 "named degradation $p" -- "$D" "$IMG/chelsea.png" -o "$T/$p.png" -p $p --severity 5
done
expect_exit 0 "ablation without noise" -- "$D" "$IMG/chelsea.png" -o "$T/nonoise.png" --stages=-noise --json
grep -q '"noise' "$T/.out" && grep -q '"op": "gaussian_noise"\|"op": "poisson_noise"' "$T/.out" && fail "noise op present with --stages -noise"
expect_exit 0 "jpeg output" -- "$D" "$IMG/coffee.png" -o "$T/c.jpg"
head -c 3 "$T/c.jpg" | od -An -tx1 | grep -q "ff d8 ff" || fail "-o x.jpg should write JPEG"
expect_exit 0 "print config" -- "$D" --print-config -p realesrgan-x4 --noise-range2 2,20
grep -q '"scale": 4' "$T/.out" || fail "print-config scale"
# The second order's noise range is the flag's; the first order keeps the default [1, 30].
tr -d ' \n' <"$T/.out" | grep -q '"second_order":{.*"noise_range":\[2\.0,20\.0\]' || fail "--noise-range2 not applied"
tr -d ' \n' <"$T/.out" | grep -q '"first_order":{.*"noise_range":\[1\.0,30\.0\].*"second_order"' || fail "first-order noise range changed"

# Usage errors: exit 2.
expect_exit 2 "unknown preset" -- "$D" "$IMG/chelsea.png" -o "$T/x.png" -p nope
expect_exit 2 "bad range" -- "$D" "$IMG/chelsea.png" -o "$T/x.png" --blur-sigma 3,1
stderr_has "--blur-sigma" "bad range message"
expect_exit 2 "bad shard" -- "$D" "$IMG" -o "$T/dir" --shard 3/3
expect_exit 2 "no output" -- "$D" "$IMG/chelsea.png"
[ -e "$T/x.png" ] && fail "usage error left an output"

# Bad input data: exit 3, message names the file, no output file.
: >"$T/empty.png"
head -c 2000 "$IMG/chelsea.png" >"$T/trunc.png"
head -c 3000 "$IMG/rocket.jpg" >"$T/trunc.jpg"
echo "not an image" >"$T/text.png"
for bad in empty.png trunc.png trunc.jpg text.png; do
  expect_exit 3 "bad input $bad" -- "$D" "$T/$bad" -o "$T/out-$bad.png"
  stderr_has "$T/$bad" "message names $bad"
  [ -e "$T/out-$bad.png" ] && fail "partial output for $bad"
done
expect_exit 3 "missing file" -- "$D" "$T/nope.png" -o "$T/out-nope.png"
expect_exit 3 "too small" -- "$D" "$FIX/images/tiny.png" -o "$T/out-tiny.png"
stderr_has "smaller than the 21x21" "too-small message"
expect_exit 3 "RGBA refused" -- "$D" "$FIX/images/rgba64.png" -o "$T/out-rgba.png"
stderr_has "alpha" "alpha message"
expect_exit 0 "RGBA with --drop-alpha" -- "$D" "$FIX/images/rgba64.png" -o "$T/out-rgba.png" --drop-alpha
expect_exit 3 "16-bit refused" -- "$D" "$FIX/images/gray16.png" -o "$T/out-16.png"
stderr_has "16-bit" "16-bit message"
expect_exit 0 "16-bit with --accept-16bit" -- "$D" "$FIX/images/rgb16.png" -o "$T/out-16.png" --accept-16bit
expect_exit 0 "gray input" -- "$D" "$FIX/images/gray64.png" -o "$T/gray.png"
expect_exit 3 "replay on the wrong image" -- "$D" "$IMG/coffee.png" --replay "$T/rec.json" -o "$T/wrong.png"
echo '{"ops": 3' >"$T/broken.json"
expect_exit 3 "broken record" -- "$D" "$IMG/chelsea.png" --replay "$T/broken.json" -o "$T/wrong.png"
stderr_has "broken.json" "broken record message"
# --format that contradicts the output's extension is refused.
expect_exit 2 "jpeg bytes under a .png name" -- "$D" "$IMG/chelsea.png" -o "$T/fmt.png" --format jpeg -s 1
stderr_has "extension" "format/extension message"
[ -e "$T/fmt.png" ] && fail "an output was written despite the refusal"
expect_exit 0 "matching --format" -- "$D" "$IMG/chelsea.png" -o "$T/fmt.jpg" --format jpeg -s 1
# A record that cannot be written takes the image with it.
# (/dev/full: the write fails after the image is in place.)
expect_exit 1 "single record write failure" -- "$D" "$IMG/chelsea.png" -o "$T/r.png" --record /dev/full -s 1
[ -e "$T/r.png" ] && fail "the image was left without its record"
# --replay takes every setting from its record: flags that would change them are refused.
"$D" "$IMG/chelsea.png" -o "$T/rp.png" --record "$T/rp.json" -s 1
expect_exit 2 "--replay with --seed" -- "$D" "$IMG/chelsea.png" --replay "$T/rp.json" -o "$T/rp2.png" -s 5
stderr_has "would be ignored" "replay conflict message"
expect_exit 2 "--replay with --stages" -- "$D" "$IMG/chelsea.png" --replay "$T/rp.json" -o "$T/rp2.png" --stages=-noise
expect_exit 0 "--replay with output flags" -- "$D" "$IMG/chelsea.png" --replay "$T/rp.json" -o "$T/rp2.png" --png-level 6
# A FIFO the user names for --replay is read (only files a tool finds, a
# model folder's config, must be regular).
mkfifo "$T/replay.fifo"
( timeout 30 cat "$T/rp.json" >"$T/replay.fifo" ) &
expect_exit 0 "--replay from a named FIFO" -- timeout 60 "$D" "$IMG/chelsea.png" --replay "$T/replay.fifo" -o "$T/rpf.png"
wait
same_pixels "$T/rpf.png" "$T/rp.png" || fail "the record read from a FIFO replays the image"
# A FIFO or a device as the output is written in place, not replaced by a file.
mkfifo "$T/fifo"
( timeout 30 cat "$T/fifo" >"$T/fifo.out" ) &
expect_exit 0 "output to a FIFO" -- "$D" "$IMG/chelsea.png" -o "$T/fifo" --format png -s 1
wait
[ -p "$T/fifo" ] || fail "the FIFO was replaced by a file"
cmp -s "$T/fifo.out" "$T/out.png" 2>/dev/null || [ -s "$T/fifo.out" ] || fail "nothing came through the FIFO"
# Any PNG reader decodes the outputs to the pixels the golden record pins
# (tests/degrade/test_record.cpp): the encoder may change, the pixels may not.
GOLDEN_SHA=80acb917733eaad1c63e0efd7d25478f5d539d3a4ef8164145756f2d51425621
if python3 -c 'import PIL' 2>/dev/null; then
  for level in 0 1 6 9; do
    expect_exit 0 "golden replay at --png-level $level" -- "$D" "$IMG/chelsea.png" \
      --replay "$FIX/degrade/golden_record_rass_s13.json" -o "$T/golden$level.png" --png-level $level
    got=$(python3 -c 'import hashlib, sys; from PIL import Image
im = Image.open(sys.argv[1]); im.load(); assert im.mode == "RGB" and im.size == (451, 300), (im.mode, im.size)
print(hashlib.sha256(im.tobytes()).hexdigest())' "$T/golden$level.png") || got="PIL failed"
    [ "$got" = "$GOLDEN_SHA" ] && ok "PIL decodes level $level to the golden pixels" \
      || fail "PIL decodes --png-level $level output to $got, not the golden pixels"
  done
  [ "$(stat -c %s "$T/golden1.png")" -lt "$(stat -c %s "$T/golden0.png")" ] || fail "level 1 is not smaller than stored"
else
  echo "skip: python3-pil not installed (scripts/install-deps.sh --with-python); outputs not checked with PIL"
fi
finish

