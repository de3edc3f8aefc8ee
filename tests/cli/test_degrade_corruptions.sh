# rass-degrade's single-corruption presets (RobustSeg-style benchmarks):
# each severity of each preset writes an image the size of its input with a
# record that --replay regenerates byte for byte; severities differ; a batch
# and its --resume agree; bad severities and pipeline flags are refused.
. "$(dirname "$0")/lib.sh"
D=$B/rass-degrade
IN=$IMG/chelsea.png
# -p frost reads ImageNet-C's frost photographs from --frost-dir; the tests
# use six small formula pictures of their own in the same names.
export RASS_FROST_DIR=$FIX/degrade/frost
for p in motion-blur defocus-blur zoom-blur glass-blur shot-noise impulse-noise speckle-noise contrast brightness \
  saturate pixelate elastic fog snow spatter frost rain low-light; do
  for s in 1 5; do
    expect_exit 0 "$p severity $s" -- "$D" "$IN" -o "$T/$p-$s.png" -p "$p" --severity "$s" --record "$T/$p-$s.json" -s 3
    expect_exit 0 "$p severity $s replayed" -- "$D" "$IN" -o "$T/$p-$s-replay.png" --replay "$T/$p-$s.json"
    cmp -s "$T/$p-$s.png" "$T/$p-$s-replay.png" || fail "$p severity $s: the replay differs"
    grep -q "\"preset\": \"$p\"" "$T/$p-$s.json" || fail "$p severity $s: the record does not name its preset"
  done
  cmp -s "$T/$p-1.png" "$T/$p-5.png" && fail "$p: severities 1 and 5 gave the same image"
  cmp -s "$T/$p-1.png" "$IN" && fail "$p: severity 1 left the image as it was"
done
# The output keeps the input's size (these presets do not rescale).
if command -v python3 >/dev/null; then
  for f in "$T/fog-5.png" "$T/snow-5.png" "$T/rain-5.png" "$T/frost-5.png"; do
    [ -e "$f" ] || { fail "$f was not made"; continue; }
    python3 - "$IN" "$f" <<'EOF' || fail "$f: size differs from the input"
import struct, sys
def size(p):
    with open(p, "rb") as f:
        h = f.read(24)
    return struct.unpack(">II", h[16:24])
sys.exit(0 if size(sys.argv[1]) == size(sys.argv[2]) else 1)
EOF
  done
fi

# On a flat gray image (128): low light darkens it, brightness lightens it.
printf 'P5\n8 8\n255\n' >"$T/g.pgm" && head -c 64 /dev/zero | tr '\0' '\200' >>"$T/g.pgm"
expect_exit 0 "low-light on gray 128" -- "$D" "$T/g.pgm" -o "$T/dark.pgm" -p low-light --severity 5 -s 1
expect_exit 0 "brightness on gray 128" -- "$D" "$T/g.pgm" -o "$T/light.pgm" -p brightness --severity 5
mean() { tail -c 64 "$1" | od -An -tu1 -v | awk '{for (i = 1; i <= NF; ++i) s += $i; n += NF} END {print int(s / n)}'; }
[ "$(mean "$T/dark.pgm")" -lt 40 ] || fail "low-light 5 on 128 gray: mean $(mean "$T/dark.pgm"), expected about 0.3 * 0.5^2.7 * 255 = 12"
[ "$(mean "$T/light.pgm")" = 255 ] || fail "brightness 5 on 128 gray: mean $(mean "$T/light.pgm"), expected 255 (0.502 + 0.5, clipped)"

# Batch mode with --variants and --resume: the resumed run changes nothing.
mkdir -p "$T/hq" && cp "$IMG/chelsea.png" "$IMG/coffee.png" "$T/hq/" 2>/dev/null || cp "$IN" "$T/hq/a.png"
expect_exit 0 "snow batch" -- "$D" "$T/hq" -o "$T/out/" -p snow --severity 2 --variants 2 -q
n=$(ls "$T/out"/*.png | wc -l)
[ "$n" -ge 2 ] || fail "snow batch: $n images"
cp -r "$T/out" "$T/out0"
expect_exit 0 "snow batch --resume" -- "$D" "$T/hq" -o "$T/out/" -p snow --severity 2 --variants 2 --resume -q
diff -r "$T/out0" "$T/out" >/dev/null || fail "--resume changed the finished outputs"

# --print-config shows a severity's values, and what each image draws.
expect_exit 0 "--print-config -p snow --severity 4" -- "$D" --print-config -p snow --severity 4
grep -q '"zoom": 4.5' "$T/.out" && grep -q '"angle": "drawn per image"' "$T/.out" ||
  fail "--print-config: snow 4's zoom 4.5 and a drawn angle expected: $(cat "$T/.out")"

# Refusals.
expect_exit 2 "fog --severity 6" -- "$D" "$IN" -o "$T/x.png" -p fog --severity 6
stderr_has "--severity must be 1..5" "the severity range is said"
expect_exit 2 "rain --scale 2" -- "$D" "$IN" -o "$T/x.png" -p rain --scale 2
expect_exit 2 "--severity with the rass preset" -- "$D" "$IN" -o "$T/x.png" -p rass --severity 2
stderr_has "snow, spatter, frost, rain, low-light" "the message lists the new presets"
[ -e "$T/x.png" ] && fail "no output after the refusals"
# A record whose fog decay is out of range is refused, naming the field.
sed 's/"decay": [0-9.]*/"decay": 0.5/' "$T/fog-1.json" >"$T/badfog.json"
expect_exit 3 "replay of a bad fog record" -- "$D" "$IN" -o "$T/x.png" --replay "$T/badfog.json"
stderr_has "decay: 0.5 is outside [1, 16]" "the field is named"
# A record made for an image under the default preset's 21 px replays it
# (the replay took the size rule of the command line's preset, rass).
printf 'P6\n3 3\n255\n' >"$T/t3.ppm" && head -c 27 /dev/urandom >>"$T/t3.ppm"
expect_exit 0 "fog on a 3x3 image" -- "$D" "$T/t3.ppm" -o "$T/t3-fog.ppm" -p fog --severity 1 --record "$T/t3.json"
expect_exit 0 "its replay" -- "$D" "$T/t3.ppm" -o "$T/t3-replay.ppm" --replay "$T/t3.json"
cmp -s "$T/t3-fog.ppm" "$T/t3-replay.ppm" || fail "3x3 fog: the replay differs"
expect_exit 3 "a missing record is named" -- "$D" "$T/t3.ppm" -o "$T/t3-x.ppm" --replay "$T/none.json"
stderr_has "none.json" "the missing record is named"

# Record integers of 0 are checked against their lower bound (non-negative
# JSON integers skipped it: rain length 0 drew nothing, resize width 0 failed
# later as a runtime error naming no file).
sed 's/"length": [0-9]*/"length": 0/' "$T/rain-1.json" >"$T/rain0.json"
expect_exit 3 "rain length 0" -- "$D" "$IN" -o "$T/x.png" --replay "$T/rain0.json"
stderr_has "length: 0 is outside [1, 1000]" "the field is named"
expect_exit 0 "a rass record" -- "$D" "$IN" -o "$T/r.png" --record "$T/r.json" -s 1
python3 - "$T/r.json" "$T/r0.json" <<'EOF2' || fail "could not edit the record"
import json, sys
r = json.load(open(sys.argv[1]))
for op in r["ops"]:
    if op["op"] == "resize":
        op["width"] = 0
        break
json.dump(r, open(sys.argv[2], "w"))
EOF2
expect_exit 3 "resize width 0" -- "$D" "$IN" -o "$T/x.png" --replay "$T/r0.json"
stderr_has "width: 0 is outside [1, 65535]" "the resize width is named"
# A record may hold at most 32 ops (each op's cost is bounded; their number was not).
python3 - "$T/contrast-1.json" "$T/many.json" <<'EOF2' || fail "could not edit the record"
import json, sys
r = json.load(open(sys.argv[1]))
r["ops"] = r["ops"] * 33
json.dump(r, open(sys.argv[2], "w"))
EOF2
expect_exit 3 "33 ops" -- "$D" "$IN" -o "$T/x.png" --replay "$T/many.json"
stderr_has "33 ops, more than the 32" "the count is said"
# Fog of strength 0 on a black image stays black (was 0 / 0: NaN pixels).
printf 'P5\n8 8\n255\n' >"$T/black.pgm" && head -c 64 /dev/zero >>"$T/black.pgm"
expect_exit 0 "fog on black" -- "$D" "$T/black.pgm" -o "$T/bf.pgm" -p fog --record "$T/bf.json"
sed 's/"strength": [0-9.]*/"strength": 0/' "$T/bf.json" >"$T/bf0.json"
expect_exit 0 "fog of strength 0 on black" -- "$D" "$T/black.pgm" -o "$T/bf0.pgm" --replay "$T/bf0.json"
cmp -s "$T/black.pgm" "$T/bf0.pgm" || fail "fog of strength 0 on black: not black"
# --variants with a preset that draws nothing at random: said once.
expect_exit 0 "contrast --variants 2" -- "$D" "$T/hq" -o "$T/cv/" -p contrast --variants 2
stderr_has "--variants 2 with preset contrast, which draws nothing at random" "the equal variants are said"
[ -e "$T/r.png" ] && [ ! -e "$T/x.png" ] || fail "no output after the refusals"

# Frost: the folder is checked up front; a replay needs it too; it belongs to -p frost alone.
expect_exit 2 "frost without pictures" -- env -u RASS_FROST_DIR "$D" "$IN" -o "$T/x.png" -p frost
stderr_has "-p frost needs ImageNet-C's frost pictures: --frost-dir DIR" "the folder is asked for"
mkdir -p "$T/fr" && cp "$FIX/degrade/frost/frost1.png" "$T/fr/"
expect_exit 2 "frost with four pictures missing" -- "$D" "$IN" -o "$T/x.png" -p frost --frost-dir "$T/fr"
stderr_has "frost2.png is missing" "the missing picture is named"
expect_exit 2 "a frost replay without pictures" -- env -u RASS_FROST_DIR "$D" "$IN" -o "$T/x.png" --replay "$T/frost-1.json"
stderr_has "frost needs ImageNet-C's frost pictures" "the replay asks for the folder"
# A picture linked to /dev/zero is refused at once (it was read without end);
# a replay with another picture under the record's name is refused by its hash.
mkdir -p "$T/fz" && cp "$FIX/degrade/frost/"* "$T/fz/" && ln -sf /dev/zero "$T/fz/frost2.png"
expect_exit 3 "a frost picture linked to /dev/zero" -- timeout 60 "$D" "$IN" -o "$T/x.png" -p frost --frost-dir "$T/fz"
stderr_has "frost2.png: a frost picture must be a regular file" "the picture is named"
mkdir -p "$T/fo" && cp "$FIX/degrade/frost/"* "$T/fo/"
pic=$(sed -n 's/.*"picture": \([0-9]\).*/\1/p' "$T/frost-1.json")
name=$(ls "$T/fo" | sort | sed -n "$((pic + 1))p")
other=$(ls "$T/fo" | sort | sed -n "$(( (pic + 1) % 5 + 1 ))p")
cp "$T/fo/$other" "$T/fo/$name.tmp" && mv "$T/fo/$name.tmp" "$T/fo/$name"
expect_exit 3 "a replay with another frost picture" -- "$D" "$IN" -o "$T/x.png" --replay "$T/frost-1.json" --frost-dir "$T/fo"
stderr_has "is not the frost picture the record was made with" "the changed picture is said"
expect_exit 2 "--frost-dir with -p fog" -- "$D" "$IN" -o "$T/x.png" -p fog --frost-dir "$FIX/degrade/frost"
stderr_has "--frost-dir holds the pictures of -p frost, not of fog" "the misplaced folder is said"
[ -e "$T/x.png" ] && fail "no output after the refusals"

# Fog draws a square map of the longest side's next power of two: a strip
# 20000 pixels long would need 8 GiB; refused before any allocation.
printf 'P5\n20000 1\n255\n' >"$T/strip.pgm" && head -c 20000 /dev/zero >>"$T/strip.pgm"
expect_exit 3 "fog on a 20000x1 strip" -- "$D" "$T/strip.pgm" -o "$T/strip-fog.pgm" -p fog
stderr_has "32768 here, more than 16384" "the map's size is said"
[ -e "$T/strip-fog.pgm" ] && fail "no output after the refusal"
finish
