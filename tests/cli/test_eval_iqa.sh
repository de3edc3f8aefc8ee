# rass-eval-iqa: pairing, output formats, conventions, bad inputs.
. "$(dirname "$0")/lib.sh"
E=$B/rass-eval-iqa
M=$FIX/metrics

expect_exit 0 "pair of files" -- "$E" -m psnr,ssim,psnr@basicsr,ssim@basicsr "$M/pair_a.png" "$M/pair_b.png" --json
# Values from tests/metrics/make_iqa_golden.py (numpy oracle).
grep -q '"psnr": 26.426799' "$T/.out" || fail "psnr differs from the oracle: $(grep '"psnr"' "$T/.out")"
grep -q '"psnr@basicsr": 26.426818' "$T/.out" || fail "psnr@basicsr differs from the oracle"

expect_exit 0 "identical images" -- "$E" -m psnr@basicsr,ssim@basicsr "$M/pair_a.png" "$M/pair_a.png" --json
grep -q '"psnr@basicsr": null' "$T/.out" || fail "PSNR of identical images should be null (inf)"
grep -q '"psnr@basicsr": "inf: identical images' "$T/.out" || fail "the reason for the null PSNR"
grep -q '"ssim@basicsr": 1' "$T/.out" || fail "SSIM of identical images should be 1"

# Directories matched by stem, a missing partner reported, exit 3, the rest measured.
mkdir -p "$T/pred" "$T/gt"
"$B/rass-degrade" "$IMG/chelsea.png" -o "$T/pred/chelsea.png" -s 1
"$B/rass-degrade" "$IMG/coffee.png" -o "$T/pred/coffee.png" -s 1
cp "$IMG/chelsea.png" "$IMG/coffee.png" "$T/gt/"
expect_exit 0 "directories" -- "$E" "$T/pred" "$T/gt" -m psnr,ssim --csv "$T/out.csv"
[ "$(wc -l <"$T/out.csv")" -eq 4 ] || fail "CSV should have header, 2 rows, mean"
grep -q '^mean,' "$T/out.csv" || fail "CSV mean row"
grep -q '^chelsea ' "$T/.out" && grep -q '^mean ' "$T/.out" || fail "table rows"
cp "$IMG/astronaut.png" "$T/pred/"
expect_exit 3 "missing partner" -- "$E" "$T/pred" "$T/gt" -m psnr --json
stderr_has "astronaut.png: no ground truth" "missing partner message"
grep -q '"count": 2' "$T/.out" || fail "the two good pairs should still be measured"

# rass-degrade's manifest (lq/hq) is a valid input.
"$B/rass-degrade" "$IMG" -o "$T/lq" -s 2 -q
expect_exit 0 "degrade manifest" -- "$E" --manifest "$T/lq/manifest.jsonl" -m psnr,ssimc -j 2 --json
[ "$(grep -c '"name"' "$T/.out")" -eq 4 ] || fail "four images from the manifest"

# Bad inputs.
expect_exit 3 "size mismatch" -- "$E" "$IMG/chelsea.png" "$IMG/coffee.png" -m psnr
stderr_has "size mismatch" "size mismatch message"
stderr_has "chelsea.png" "size mismatch names the file"
: >"$T/empty.png"
expect_exit 3 "empty file" -- "$E" "$T/empty.png" "$IMG/coffee.png"
stderr_has "$T/empty.png" "empty file named"
expect_exit 3 "16-bit refused" -- "$E" "$FIX/images/rgb16.png" "$FIX/images/rgb16.png"
stderr_has "16-bit" "16-bit message"
expect_exit 0 "gray pair" -- "$E" "$M/gray_a.png" "$M/gray_b.png" -m psnr,psnry,ssim,ssim@basicsr
expect_exit 0 "alpha dropped" -- "$E" "$FIX/images/rgba64.png" "$FIX/images/rgba64.png" -m psnr
expect_exit 2 "unknown metric" -- "$E" -m lpips "$M/pair_a.png" "$M/pair_b.png"
expect_exit 2 "niqe without params" -- env -u RASS_NIQE_PARAMS "$E" -m niqe "$IMG/chelsea.png"
stderr_has "--niqe-params" "niqe params message"
expect_exit 2 "one input for FR" -- "$E" -m psnr "$IMG/chelsea.png"

# Two files with one key (a.png and a.jpg) no longer overwrite each other:
# the later one is a bad item naming both; the rest is measured; exit 3.
mkdir -p "$T/dup/p" "$T/dup/g"
cp "$M/pair_a.png" "$T/dup/p/a.png"; cp "$M/pair_a.png" "$T/dup/g/a.png"
cp "$M/pair_b.png" "$T/dup/p/b.png"; cp "$M/pair_a.png" "$T/dup/g/b.png"
"$B/rass-degrade" "$M/pair_a.png" -o "$T/dup/p/a.jpg" -p jpeg -s 1 2>/dev/null
expect_exit 3 "duplicate keys" -- "$E" "$T/dup/p" "$T/dup/g" -m psnr --json
stderr_has "$T/dup/p/a.png: has the same key 'a' as $T/dup/p/a.jpg" "duplicate named with both files"
grep -q '"count": 2' "$T/.out" || fail "both keys still measured once: $(cat "$T/.out")"

# Empty input is bad input, not a mean of NaN with exit 0.
mkdir -p "$T/none/p" "$T/none/g"
expect_exit 3 "empty directories" -- "$E" "$T/none/p" "$T/none/g" -m psnr
stderr_has "no inputs found" "empty input message"

# A report that cannot be written is a failure (exit 1), whatever goes to stdout.
if [ -w /dev/full ]; then
  expect_exit 1 "--json to a full disk" -- bash -c "'$E' '$M/pair_a.png' '$M/pair_b.png' -m psnr --json >/dev/full"
  expect_exit 1 "table to a full disk" -- bash -c "'$E' '$M/pair_a.png' '$M/pair_b.png' -m psnr >/dev/full"
  expect_exit 1 "--csv - to a full disk" -- bash -c "'$E' '$M/pair_a.png' '$M/pair_b.png' -m psnr --csv - >/dev/full"
fi
# The CSV report may not replace an input.
cp "$M/pair_a.png" "$T/keep.png"
expect_exit 2 "--csv onto an input" -- "$E" "$T/keep.png" "$M/pair_b.png" -m psnr --csv "$T/keep.png"
cmp -s "$T/keep.png" "$M/pair_a.png" || fail "an input was overwritten by --csv"
expect_exit 2 "two reports on stdout" -- "$E" "$M/pair_a.png" "$M/pair_b.png" -m psnr --json --csv -
# --csv may not replace the manifest or the NIQE parameters; a metric named twice is refused.
printf '{"pred":"%s","gt":"%s"}\n' "$M/pair_a.png" "$M/pair_b.png" >"$T/m.jsonl"; cp "$T/m.jsonl" "$T/m.orig"
expect_exit 2 "--csv onto the manifest" -- "$E" --manifest "$T/m.jsonl" -m psnr --csv "$T/m.jsonl"
cmp -s "$T/m.jsonl" "$T/m.orig" || fail "the manifest was overwritten"
expect_exit 2 "a metric named twice" -- "$E" -m psnr,psnr "$M/pair_a.png" "$M/pair_b.png"
# Reports to a pipe through process substitution (a FIFO-like /dev/fd path).
expect_exit 0 "--csv to a process substitution" -- bash -c "'$E' -m psnr '$M/pair_a.png' '$M/pair_b.png' --no-table --csv >(cat >'$T/ps.csv')"
sleep 0.2; grep -q '^mean,' "$T/ps.csv" || fail "the CSV did not come through the pipe"
finish

