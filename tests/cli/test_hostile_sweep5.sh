# Found by a hostile sweep (2026-12-03), each case failing on the binaries
# before its fix:
# 1. stdout or stderr closed (`>&-`): a batch tool's output lock took fd 1 or
#    2, so the --json summary or the messages went into OUT/.rass-lock and
#    the run ended 0 with its report lost;
# 2. an input folder whose path passes PATH_MAX was left out without a word;
# 3. rass-degrade --resume kept an LQ image made from an HQ image since
#    changed (the record held its size only);
# 4. rass-degrade with another --format over a folder left the old images
#    beside the new ones, one record for both names;
# 5. a key whose record name passes 255 bytes failed after the work with
#    "cannot remove the older record: File name too long" (exit 1);
# 6. a NaN in seg_head.safetensors failed every item as "non-finite
#    predictions" (exit 1), the file never named.
. "$(dirname "$0")/lib.sh"
D=$B/rass-degrade
"$B/rass-scenes" -n 2 --size 64 -o "$T/sc" -q || { fail "rass-scenes"; finish; }
HQ=$T/sc/images

# 1. Closed stdout and stderr.
expect_exit 1 "degrade --json with stdout closed" -- bash -c '"$0" "$1" -o "$2" --json -q >&-' "$D" "$HQ" "$T/o1"
stderr_has "write failed" "the lost report is said"
[ ! -s "$T/o1/.rass-lock" ] || fail "the lock file received output: $(head -c 200 "$T/o1/.rass-lock")"
expect_exit 3 "degrade with stderr closed and a missing input" -- bash -c '"$0" /nonexistent.png "$1" -o "$2" 2>&-' "$D" "$HQ" "$T/o2"
[ ! -s "$T/o2/.rass-lock" ] || fail "the lock file received the messages: $(head -c 200 "$T/o2/.rass-lock")"
[ -s "$T/o2/scene_000000.png" ] || fail "the good inputs were not degraded"

# 2. A folder deeper than PATH_MAX inside an input tree: named, exit 3.
d=$T/deep
mkdir -p "$d" && cp "$HQ/scene_000001.png" "$d/top.png"
long=$(printf 'd%.0s' $(seq 200))
(cd "$d" && for _ in $(seq 21); do mkdir "$long" && cd "$long" || exit 1; done && cp "$HQ/scene_000000.png" a.png) ||
  fail "could not make the deep tree"
expect_exit 3 "degrade over a tree past PATH_MAX" -- "$D" "$d" -o "$T/dout" -q
stderr_has "cannot enter directory (inside an input): File name too long" "the folder is named with the reason"
rm -rf "$d"

# 3. --resume redoes an item whose HQ image changed since (same size).
mkdir -p "$T/hq" && cp "$HQ"/*.png "$T/hq/"
expect_exit 0 "degrade" -- "$D" "$T/hq" -o "$T/x" -s 2 -q
cp "$HQ/scene_000001.png" "$T/hq/scene_000000.png"
expect_exit 0 "degrade --resume after an HQ image changed" -- "$D" "$T/hq" -o "$T/x" -s 2 --resume
stderr_has "1 written, 1 already done" "the changed item is redone, the other kept"
expect_exit 0 "degrade afresh" -- "$D" "$T/hq" -o "$T/y" -s 2 -q
cmp -s "$T/x/scene_000000.png" "$T/y/scene_000000.png" || fail "the redone LQ image is not the fresh run's"
grep -q '"hq_hash"' "$T/x/scene_000000.json" || fail "the record holds no hash of its HQ image"

# 4. Another --format over a folder of PNG outputs: refused, nothing touched.
cp "$T/x/scene_000000.png" "$T/x0.png" && cp "$T/x/scene_000000.json" "$T/x0.json"
expect_exit 2 "degrade -f jpeg over PNG outputs" -- "$D" "$T/hq" -o "$T/x" -s 2 -f jpeg --resume -q
stderr_has "scene_000000.png is another format's output" "the old image is named"
[ ! -e "$T/x/scene_000000.jpg" ] || fail "a JPEG was written beside the PNG"
cmp -s "$T/x/scene_000000.png" "$T/x0.png" && cmp -s "$T/x/scene_000000.json" "$T/x0.json" ||
  fail "the earlier outputs changed"

# 5. A key whose record name passes 255 bytes: a bad item, named, the others done.
mkdir -p "$T/ln" && cp "$HQ/scene_000000.png" "$T/ln/$(printf 'k%.0s' $(seq 251)).png" && cp "$HQ/scene_000001.png" "$T/ln/short.png"
expect_exit 3 "degrade a 251-byte stem" -- "$D" "$T/ln" -o "$T/lo"
stderr_has "longer than a file name can be (255 bytes)" "the reason given"
stderr_has "1 written" "the other item is written"
[ "$(find "$T/lo" -name 'kkk*' | wc -l)" = 0 ] || fail "a piece of the long-named item was written"

# 6. A NaN in the segmentation head's weights: bad input naming the file.
if [ -x "$B/rass-segment" ] && [ -d "$SRC/models/mini/segment" ]; then
  cp -rL "$SRC/models/mini/segment" "$T/segm"
  f=$T/segm/seg_head.safetensors
  n=$(od -An -tu8 -N8 "$f" | tr -d ' ')
  printf '\x00\x00\xc0\x7f' | dd of="$f" bs=1 seek=$((8 + n)) conv=notrunc 2>/dev/null  # the first float: NaN
  expect_exit 3 "segment with a NaN in seg_head" -- "$B/rass-segment" -m "$T/segm" "$HQ/scene_000000.png" -o "$T/s.png" -q
  stderr_has "seg_head.safetensors: tensor" "the file and tensor are named"
  [ ! -e "$T/s.png" ] || fail "an output was written"
else
  echo "skipped: case 6 (no rass-segment or mini model)"
fi
finish
