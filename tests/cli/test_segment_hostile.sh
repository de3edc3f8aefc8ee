# rass-segment against hostile inputs (issue 10's hostile-user pass): each
# case failed before its fix. Odd-shaped images come from
# tests/cli/make_segment_hostile_images.py; the expected sizes are worked by
# hand from detectron2's ResizeShortestEdge (short side 512, long side at
# most 2048, int(x + 0.5)), the tiny model's size_divisibility 8 and its
# coarsest feature stride 32.
. "$(dirname "$0")/lib.sh"
S=$B/rass-segment
[ -x "$S" ] || { echo "skipped: rass-segment not built (no LibTorch)"; exit 77; }
M=$FIX/nn/ras_tiny
H=$FIX/segment_hostile
png_size() { od -An -tu1 -j16 -N8 "$1" | awk '{printf "%dx%d", $1*16777216+$2*65536+$3*256+$4, $5*16777216+$6*65536+$7*256+$8}'; }

# 60000x3: 2048 / 60000 * 3 = 0.1 px high -> 0; was a division by zero (SIGFPE).
expect_exit 3 "an image the resize leaves 0 px high" -- "$S" -m "$M" "$H/wide_60000x3.png" -o "$T/wide.png"
stderr_has "wide_60000x3.png" "the message names the image"
stderr_has "2048x0" "the message says what the resize leaves"
[ ! -e "$T/wide.png" ] || fail "no output for a refused image"

# 3x2000: scale 2048/2000 -> 3.07 x 2048 -> 3x2048, padded to 8x2048: under
# the coarsest stride; was exit 1 from LibTorch (empty feature map). Padded
# up to 32 wide: 32x2048, windows of 32 -> 64 tiles.
expect_exit 0 "a 3 px wide image" -- "$S" -m "$M" --vae-mode "$H/tall_3x2000.png" -o "$T/tall.png" --json
[ "$(png_size "$T/tall.png")" = "3x2000" ] || fail "label map $(png_size "$T/tall.png"), expected the input's 3x2000"
grep -q '"processed_size":\[3,2048\]' "$T/.out" || fail "processed 3x2048: $(cat "$T/.out")"
grep -q '"padded_size":\[32,2048\]' "$T/.out" || fail "padded up to the coarsest stride: $(cat "$T/.out")"
grep -q '"tiles":64' "$T/.out" || fail "2048 / 32 windows: $(cat "$T/.out")"

# 8x8 at native resolution: padded 8x8 -> 32x32, one window.
expect_exit 0 "an 8x8 image with --no-resize" -- "$S" -m "$M" --vae-mode --no-resize "$H/small_8x8.png" -o "$T/small.png" --json
[ "$(png_size "$T/small.png")" = "8x8" ] || fail "label map $(png_size "$T/small.png"), expected 8x8"
grep -q '"padded_size":\[32,32\]' "$T/.out" || fail "padded up to 32x32: $(cat "$T/.out")"

# A 16-bit image: exit 3 naming the file, and not in another tool's name.
expect_exit 3 "a 16-bit image" -- "$S" -m "$M" "$H/gray16.png" -o "$T/g16.png"
stderr_has "gray16.png: is a 16-bit image" "the message names the file"
grep -q "rass-restore" "$T/.err" && fail "rass-segment's message names rass-restore: $(cat "$T/.err")"

# --tags with fewer lines than images: refused before any work (was: the
# first items written, the rest failed one by one).
mkdir -p "$T/in"
for k in a b c; do cp "$FIX/nn/ras_lq.png" "$T/in/$k.png"; done
printf 'dog\n' >"$T/tags.txt"
expect_exit 3 "--tags with 1 line for 3 images" -- "$S" -m "$M" --no-resize "$T/in" -O "$T/out" --tags "$T/tags.txt"
stderr_has "tags.txt" "the message names the tag file"
[ -z "$(ls -A "$T/out" 2>/dev/null)" ] || fail "partial outputs: $(ls "$T/out")"
# A keyed file without b: b alone fails, a and c are written (as rass-restore).
printf 'a\tdog\nc\tcat\n' >"$T/keyed.txt"
expect_exit 3 "--tags KEY<TAB>tags without b" -- "$S" -m "$M" --no-resize --vae-mode -q "$T/in" -O "$T/out-k" --tags "$T/keyed.txt"
stderr_has "keyed.txt: no tags for item 'b'" "the message names the tag file and the item"
[ -s "$T/out-k/a.png" ] && [ -s "$T/out-k/c.png" ] && [ ! -e "$T/out-k/b.png" ] || fail "keyed tags without b: outputs $(ls "$T/out-k")"
# The shard that needs only the given lines still runs (input order a, b, c).
expect_exit 0 "--tags enough for this shard" -- "$S" -m "$M" --no-resize --vae-mode -q "$T/in" -O "$T/out" --tags "$T/tags.txt" --shard 0/3
[ -s "$T/out/a.png" ] || fail "shard 0/3 writes a.png"

# A manifest key whose output name passes 255 bytes (252 + ".png") is a bad
# item before the model runs (it failed at the write, exit 1); the other item is written.
k252=$(printf 'k%.0s' $(seq 252))
printf '{"key":"%s","lq":"%s"}\n{"key":"ok","lq":"%s"}\n' "$k252" "$FIX/nn/ras_lq.png" "$FIX/nn/ras_lq.png" >"$T/long.jsonl"
expect_exit 3 "a 252-byte manifest key" -- "$S" -m "$M" --manifest "$T/long.jsonl" -O "$T/out-long" -q
stderr_has "256 bytes, longer than a file name can be (255 bytes)" "the reason is given"
[ -s "$T/out-long/ok.png" ] && [ "$(find "$T/out-long" -name 'kkk*' | wc -l)" = 0 ] || fail "a 252-byte key: outputs $(find "$T/out-long" -type f | cut -c1-80)"

# --threads is bounded (100000 asked LibTorch for that many threads and hung).
expect_exit 2 "--resume with -o (one image)" -- "$S" -m "$M" "$FIX/nn/ras_lq.png" -o "$T/r.png" --resume
expect_exit 2 "--threads 100000" -- "$S" -m "$M" "$FIX/nn/ras_lq.png" -o "$T/t.png" --threads 100000
stderr_has "threads" "the message names the flag"
[ ! -e "$T/t.png" ] || fail "output written"

finish
