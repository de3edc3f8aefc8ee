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
finish
