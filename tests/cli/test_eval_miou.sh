# rass-eval-miou end to end: the hand-made fixtures (numbers worked out in
# tests/fixtures/miou/make_miou_fixtures.py and tests/metrics/test_miou.cpp),
# both conventions, reduce_zero_label, label maps, pipes, manifests, outputs,
# bad pairs that must not stop the run, and usage errors.
. "$(dirname "$0")/lib.sh"
E=$B/rass-eval-miou
M=$FIX/miou

# stdout_has TEXT DESCRIPTION: the last expect_exit's stdout contains TEXT.
stdout_has() {
  grep -qF -- "$1" "$T/.out" || fail "$2: stdout lacks '$1': $(head -c 600 "$T/.out")"
}

# Two directories matched by stem (gt/sub/b.png is 16-bit, in a subdirectory).
# mmseg: IoU 33.33 75 50 -> mIoU 52.78; aAcc 5/7 = 71.43.
# Keys are relative paths: pred/b.png and gt/sub/b.png do not pair without --match-stem.
expect_exit 3 "directories keyed by relative path" -- "$E" "$M/pred" "$M/gt" -n 3
stderr_has "no ground truth with key 'b'" "unpaired by relative path"
stderr_has "--match-stem" "the hint names --match-stem"
expect_exit 0 "directories, mmseg table" -- "$E" --match-stem "$M/pred" "$M/gt" -n 3
stdout_has "52.78" "mIoU"
stdout_has "71.43" "aAcc"
stdout_has "mFscore" "summary header"
expect_exit 0 "detectron2 JSON" -- "$E" --match-stem "$M/pred" "$M/gt" -n 3 --convention detectron2 --json -q
stdout_has '"fwIoU": 55.95238095238' "fwIoU = 47/84"
stdout_has '"mIoU": 52.7777777777' "mIoU full precision"
stdout_has '"convention": "detectron2"' "convention recorded"

# ADE20K-style raw labels: with --reduce-zero-label mIoU = 13/18 = 72.22; without
# it, GT value 3 is out of range for 3 classes: counted, warned, exit 3.
expect_exit 0 "reduce-zero-label" -- "$E" "$M/ade/pred" "$M/ade/gt" -n 3 --reduce-zero-label --json -q
stdout_has '"mIoU": 72.2222222222' "mIoU with reduce_zero_label"
expect_exit 3 "out-of-range GT without reduce-zero-label" -- "$E" "$M/ade/pred" "$M/ade/gt" -n 3 --json -q
stderr_has "$M/ade/gt/x.png: value 3 at (3, 0)" "first out-of-range pixel named"
stderr_has "reduce-zero-label" "hint"
stdout_has '"out_of_range_gt": 2' "out-of-range count in JSON"

# One pair, the prediction through a pipe.
expect_exit 0 "one pair from stdin" -- sh -c "'$E' - '$M/gt/a.png' -n 3 --json -q < '$M/pred/a.png'"
stdout_has '"evaluated": 1' "one pair"

# Class names and a label map: swapping GT 1 and 2 of the a/b pair.
printf 'zero\none\ntwo\n' >"$T/names.txt"
printf '1 2\n2 1\n' >"$T/swap.txt"
expect_exit 0 "class names from a file" -- "$E" --match-stem "$M/pred" "$M/gt" --classes "$T/names.txt" -q
stdout_has "two " "names in the table"
expect_exit 2 "names and --num-classes disagree" -- "$E" --match-stem "$M/pred" "$M/gt" --classes cityscapes -n 3
stderr_has "19 names" "mismatch message"
expect_exit 0 "label map" -- "$E" --match-stem "$M/pred" "$M/gt" -n 3 --label-map "$T/swap.txt" --csv - -q
# gt after the swap: a = 0 0 2 2, b = 1 1 255 2; pred: a = 0 1 1 1, b = 2 0 2 1.
# class 1: I = 0, L = 2, P = 4 -> IoU 0; class 0: I = 1, L = 2, P = 2 -> 1/3.
grep -q '^1,1,0.0,0.0,' "$T/.out" || fail "class 1 after the swap: $(cat "$T/.out")"
grep -q '^0,0,33.33333333333333,' "$T/.out" || fail "class 0 after the swap: $(cat "$T/.out")"
# A byte-order mark (an editor's) before a class list or a label map is not
# part of the first name or value (it named class 0 "\ufeffzero"; the map failed).
printf '\357\273\277zero\r\none\r\ntwo\r\n' >"$T/names-bom.txt"
printf '\357\273\2771 2\n2 1\n' >"$T/swap-bom.txt"
expect_exit 0 "a class list with a BOM" -- "$E" --match-stem "$M/pred" "$M/gt" --classes "$T/names-bom.txt" --csv - -q
grep -q '^0,zero,' "$T/.out" || fail "class 0 is named zero: $(head -3 "$T/.out" | cat -v)"
expect_exit 0 "a label map with a BOM" -- "$E" --match-stem "$M/pred" "$M/gt" -n 3 --label-map "$T/swap-bom.txt" --csv - -q
grep -q '^1,1,0.0,0.0,' "$T/.out" || fail "class 1 after the swap (BOM): $(cat "$T/.out")"

# A manifest (TSV, paths relative to it) and every output file.
mkdir -p "$T/m"
cp -r "$M/pred" "$M/gt" "$T/m/"
printf 'pred/a.png\tgt/a.png\n# comment\n{"pred": "pred/b.png", "gt": "gt/sub/b.png", "key": "bee"}\n' >"$T/m/list.tsv"
expect_exit 0 "manifest" -- "$E" -n 3 --manifest "$T/m/list.tsv" --per-image "$T/per.jsonl" --confusion "$T/cm.npy" \
  --csv "$T/c.csv" --json -q
stdout_has '"mIoU": 52.7777777777' "manifest result"
[ "$(wc -l <"$T/per.jsonl")" -eq 2 ] || fail "per-image: 2 lines expected"
head -n 1 "$T/per.jsonl" | grep -q '"key":"a"' || fail "per-image order"
tail -n 1 "$T/per.jsonl" | grep -q '"key":"bee"' || fail "per-image key from the manifest"
[ "$(head -c 6 "$T/cm.npy" | tail -c 5)" = "NUMPY" ] || fail "confusion matrix is not .npy"
grep -q "'descr': '<i8'" "$T/cm.npy" && grep -q "'shape': (3, 3)" "$T/cm.npy" || fail "confusion dtype/shape"
[ "$(wc -l <"$T/c.csv")" -eq 4 ] || fail "CSV: header + 3 classes"
ls "$T" | grep -q '\.tmp\.' && fail "temporary files left"

# Bad pairs: reported by name, counted, the rest still evaluated; exit 3.
mkdir -p "$T/bad"
cp -r "$M/pred" "$M/gt" "$T/bad/"
cp "$M/gt/a.png" "$T/bad/gt/lonely.png"                       # no prediction
printf 'P2\n2 1\n255\n0 1\n' >"$T/bad/pred/size.pgm"          # 2x1 ...
printf 'P2\n1 2\n255\n0\n1\n' >"$T/bad/gt/size.pgm"           # ... vs 1x2
head -c 20 "$M/gt/a.png" >"$T/bad/gt/cut.png"
cp "$M/pred/a.png" "$T/bad/pred/cut.png"
cp "$IMG/chelsea.png" "$T/bad/pred/rgb.png"
cp "$M/gt/a.png" "$T/bad/gt/rgb.png"
expect_exit 3 "bad pairs" -- "$E" --match-stem "$T/bad/pred" "$T/bad/gt" -n 3 --json -j 2
stderr_has "$T/bad/gt/lonely.png: no prediction" "missing partner named"
stderr_has "$T/bad/pred/size.pgm: is 2x1 but its ground truth" "size mismatch named"
stderr_has "$T/bad/gt/cut.png" "truncated file named"
stderr_has "$T/bad/pred/rgb.png: has 3 channels" "RGB label map named"
stdout_has '"failed": 4' "4 bad pairs counted"
stdout_has '"mIoU": 52.7777777777' "good pairs still evaluated"

# Same output whatever --jobs.
"$E" --match-stem "$M/pred" "$M/gt" -n 3 --json -q -j 1 >"$T/j1.json"
"$E" --match-stem "$M/pred" "$M/gt" -n 3 --json -q -j 2 >"$T/j2.json"
cmp -s "$T/j1.json" "$T/j2.json" && ok "--jobs 1 = --jobs 2" || fail "output depends on --jobs"

# Usage errors.
expect_exit 2 "no class count" -- "$E" --match-stem "$M/pred" "$M/gt"
expect_exit 2 "unknown convention" -- "$E" --match-stem "$M/pred" "$M/gt" -n 3 --convention cocostuff
expect_exit 2 "two outputs on stdout" -- "$E" --match-stem "$M/pred" "$M/gt" -n 3 --json --per-image -
expect_exit 2 "a directory and a file" -- "$E" "$M/pred" "$M/gt/a.png" -n 3
expect_exit 2 "too many classes" -- "$E" --match-stem "$M/pred" "$M/gt" -n 5000
expect_exit 3 "missing label-map file" -- "$E" --match-stem "$M/pred" "$M/gt" -n 3 --label-map "$T/nope.txt"
stderr_has "$T/nope.txt" "label-map file named"
# An empty label-map file (a failed redirect) is refused; {} maps nothing on purpose.
: >"$T/empty-map.txt"
expect_exit 3 "an empty label-map file" -- "$E" --match-stem "$M/pred" "$M/gt" -n 3 --label-map "$T/empty-map.txt"
stderr_has "empty-map.txt: holds no 'OLD NEW' lines" "the empty map is named"
echo '{}' >"$T/none-map.json"
expect_exit 0 "a {} label map" -- "$E" --match-stem "$M/pred" "$M/gt" -n 3 --label-map "$T/none-map.json" -q

# A JPEG label map is read, with a warning: JPEG changes values along edges.
printf 'P5\n8 8\n255\n' >"$T/one.pgm"
head -c 64 /dev/zero | tr '\0' '\001' >>"$T/one.pgm"
expect_exit 0 "a gray JPEG made" -- "$B/rass-degrade" -p jpeg --severity 1 "$T/one.pgm" -o "$T/one.jpg" -q
expect_exit 0 "a JPEG label map" -- "$E" -n 3 "$T/one.jpg" "$T/one.pgm" -q
stderr_has "warning: 1 label map(s) are JPEG files (first: $T/one.jpg)" "the JPEG label map is named"
expect_exit 0 "PNM label maps" -- "$E" -n 3 "$T/one.pgm" "$T/one.pgm" -q
grep -q JPEG "$T/.err" && fail "no JPEG warning without a JPEG"

# The dispatcher finds the tool.
expect_exit 0 "rass eval-miou" -- "$B/rass" eval-miou --version

# Reports that cannot be written are failures (exit 1); no report replaces an input.
if [ -w /dev/full ]; then
  expect_exit 1 "--json to a full disk" -- bash -c "'$E' --match-stem '$M/pred' '$M/gt' -n 3 --json -q >/dev/full"
  expect_exit 1 "--per-image - to a full disk" -- bash -c "'$E' --match-stem '$M/pred' '$M/gt' -n 3 -q --per-image - >/dev/full"
fi
cp -r "$M/pred" "$M/gt" "$T/g2/" 2>/dev/null || { mkdir -p "$T/g2"; cp -r "$M/pred" "$M/gt" "$T/g2/"; }
expect_exit 2 "--csv onto a label map" -- "$E" --match-stem "$T/g2/pred" "$T/g2/gt" -n 3 --csv "$T/g2/gt/a.png"
cmp -s "$T/g2/gt/a.png" "$M/gt/a.png" || fail "a label map was overwritten"

# Palette PNG label maps (VOC): the palette indices are the classes, as mmseg reads them.
# label_voc.png: 11x7, classes 0..20 on 45 pixels, a 255 border on 32 (PIL: mode P).
expect_exit 0 "palette label maps" -- "$E" --classes voc "$FIX/label_voc.png" "$FIX/label_voc.png" --json -q
stdout_has '"mIoU": 100.0' "palette map against itself"
stdout_has '"evaluated": 45' "palette indices, not colours, are counted"
stdout_has '"ignored": 32' "index 255 is the ignore index"
# An out-of-range --ignore-index is refused, not clamped.
expect_exit 2 "--ignore-index overflow" -- "$E" --match-stem "$M/pred" "$M/gt" -n 3 --ignore-index 99999999999999999999
expect_exit 3 "--ignore-index -1 (255 is then out of range)" -- "$E" --match-stem "$M/pred" "$M/gt" -n 3 --ignore-index -1 -q --json
# A file named only by the suffix has no key: a bad item, named (it was dropped silently).
mkdir -p "$T/sfx/p" "$T/sfx/g"; cp "$M/gt/a.png" "$T/sfx/g/x_gt.png"; cp "$M/pred/a.png" "$T/sfx/p/x.png"; cp "$M/gt/a.png" "$T/sfx/g/_gt.png"
expect_exit 3 "suffix-only file name" -- "$E" -n 3 --gt-suffix _gt.png "$T/sfx/p" "$T/sfx/g" -q
stderr_has "$T/sfx/g/_gt.png" "suffix-only name is named"
finish

