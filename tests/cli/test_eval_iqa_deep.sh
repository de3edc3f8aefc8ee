# rass-eval-iqa's deep metrics (LPIPS, DISTS): flags, weights-folder errors,
# batching, and values equal to the official packages' on the narrow random
# fixtures of tests/nn/make_iqa_lpips_fixture.py / make_iqa_dists_fixture.py
# (expected values printed by those scripts). A build without LibTorch must
# refuse the names with a message saying the network layer is absent.
. "$(dirname "$0")/lib.sh"
E=$B/rass-eval-iqa
Q=$FIX/iqa

"$E" -m lpips "$Q/lpips_a0.png" "$Q/lpips_b0.png" >"$T/.out" 2>"$T/.err"
if grep -q "network layer" "$T/.err"; then
  expect_exit 2 "no network layer: lpips refused" -- "$E" -m psnr,lpips "$Q/lpips_a0.png" "$Q/lpips_b0.png"
  stderr_has "built without LibTorch" "no-torch message"
  finish
fi

# Errors: no weights folder (usage), a missing folder or file (bad input, named).
expect_exit 2 "no --weights" -- env -u RASS_IQA_WEIGHTS "$E" -m lpips "$Q/lpips_a0.png" "$Q/lpips_b0.png"
stderr_has "--weights DIR" "no --weights message"
stderr_has "lpips_alex.safetensors" "no --weights names the file"
expect_exit 3 "missing folder" -- "$E" -m dists --weights "$T/none" "$Q/lpips_a0.png" "$Q/lpips_b0.png"
stderr_has "$T/none: does not exist" "missing folder named"
mkdir -p "$T/w"
expect_exit 3 "missing file" -- "$E" -m lpips-vgg --weights "$T/w" "$Q/lpips_a0.png" "$Q/lpips_b0.png"
stderr_has "$T/w/lpips_vgg.safetensors: missing" "missing file named"
stderr_has "convert_iqa_lpips.py vgg" "missing file names the converter"
expect_exit 2 "unknown metric lists the deep ones" -- "$E" -m lpipz --weights "$Q" "$Q/lpips_a0.png" "$Q/lpips_b0.png"
stderr_has "lpips, lpips-vgg, dists" "deep metrics listed"
expect_exit 2 "--batch 0" -- "$E" -m lpips --batch 0 --weights "$Q" "$Q/lpips_a0.png" "$Q/lpips_b0.png"
expect_exit 2 "bad --device" -- "$E" -m lpips --device tpu --weights "$Q" "$Q/lpips_a0.png" "$Q/lpips_b0.png"

# Values: three pairs (0 and 1 share a size) against the official packages.
mkdir -p "$T/pred" "$T/gt"
for i in 0 1 2; do cp "$Q/lpips_a$i.png" "$T/pred/p$i.png"; cp "$Q/lpips_b$i.png" "$T/gt/p$i.png"; done
check() {  # check FILE NAME METRIC VALUE
  local got
  got=$(grep -A8 "\"name\": \"$2\"" "$1" | grep "\"$3\":" | head -1 | sed 's/.*: //; s/,//')
  awk -v a="$got" -v b="$4" 'BEGIN { d = a - b; if (d < 0) d = -d; exit !(a != "" && d < 1e-5) }' ||
    fail "$2 $3 = '$got', official $4"
}
values() {  # values FILE: every value of the fixtures' pairs
  check "$1" p0 lpips 0.052699241787195206; check "$1" p1 lpips 0.006870898883789778
  check "$1" p2 lpips 0.003772341413423419
  check "$1" p0 lpips-vgg 0.08578567206859589; check "$1" p1 lpips-vgg 0.03261201083660126
  check "$1" p2 lpips-vgg 0.09414944052696228
  check "$1" p0 dists 0.11935693025588989; check "$1" p1 dists 0.052602529525756836
  check "$1" p2 dists 0.03644537925720215
}
expect_exit 0 "psnr + deep metrics, one image at a time" -- \
  env RASS_IQA_WEIGHTS="$Q" "$E" -m psnr,lpips,lpips-vgg,dists "$T/pred" "$T/gt" --json -j 1
cp "$T/.out" "$T/one.json"
values "$T/one.json"
grep -q '"lpips": "LPIPS v0.1 AlexNet' "$T/one.json" || fail "lpips convention in --json"
grep -q '"psnr": ' "$T/one.json" || fail "classical metrics alongside"
expect_exit 0 "batched (--batch 3, two workers)" -- \
  "$E" -m psnr,lpips,lpips-vgg,dists --weights "$Q" "$T/pred" "$T/gt" --json --batch 3 -j 2 --threads 1
values "$T/.out"
# Same rows in the same order (values agree to float rounding: a batched
# convolution may sum in another order, ~1e-7 here).
[ "$(grep '"name"' "$T/one.json")" = "$(grep '"name"' "$T/.out")" ] ||
  fail "--batch 3 -j 2 should list the same images in the same order"
expect_exit 0 "CSV with deep columns" -- "$E" -m lpips,dists --weights "$Q" "$T/pred" "$T/gt" --csv "$T/d.csv" --no-table
head -1 "$T/d.csv" | grep -q '^name,lpips,dists$' || fail "CSV header: $(head -1 "$T/d.csv")"
[ "$(wc -l <"$T/d.csv")" -eq 5 ] || fail "CSV should have header, 3 rows, mean"

# Bad items inside a batch: a size mismatch and a too-small pair are named,
# the others keep their values, exit 3.
cp "$Q/lpips_b2.png" "$T/gt/p1.png"
for d in pred gt; do
  printf 'P5\n20 20\n255\n' >"$T/$d/small.pgm"
  head -c 400 /dev/urandom >>"$T/$d/small.pgm"
done
expect_exit 3 "size mismatch and a small image in a batch" -- \
  "$E" -m lpips,dists --weights "$Q" "$T/pred" "$T/gt" --json --batch 4
stderr_has "p1.png" "mismatch names the file"
stderr_has "small.pgm" "small image named"
stderr_has "at least 31 pixels" "small image message"
check "$T/.out" p0 lpips 0.052699241787195206
check "$T/.out" p2 dists 0.03644537925720215
grep -q '"count": 2' "$T/.out" || fail "the two good pairs should be measured"
finish
