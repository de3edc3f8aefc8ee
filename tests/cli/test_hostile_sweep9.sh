# The checks of 2026-12-05 (sixth session), each failing on the binaries
# before its fix:
# 1. rass-eval-iqa --y-channel with no BasicSR metric (psnr@basicsr,
#    ssim@basicsr) and --niqe-params with no niqe changed nothing without a
#    word; they are now named in a warning, as the deep-metric options are.
# 2. Integer options bounded by CLI::Range said "Value 1e3 not in range 1 to
#    1000000" for 1e3 (or 2.5): in range, but not an integer.
. "$(dirname "$0")/lib.sh"

# 1. Options no asked metric reads.
if [ -x "$B/rass-eval-iqa" ]; then
  E=$B/rass-eval-iqa
  printf 'P5\n16 16\n255\n' >"$T/l.pgm" && head -c 256 /dev/zero >>"$T/l.pgm"
  expect_exit 0 "--y-channel with psnr" -- "$E" -m psnr,ssim --y-channel "$T/l.pgm" "$T/l.pgm"
  stderr_has "warning: --y-channel: option of the BasicSR metrics (psnr@basicsr, ssim@basicsr), and -m psnr,ssim asks for none; it changes nothing" \
    "the unused --y-channel is named"
  expect_exit 0 "--y-channel with ssim@basicsr" -- "$E" -m ssim@basicsr --y-channel "$T/l.pgm" "$T/l.pgm"
  grep -q "warning" "$T/.err" && fail "--y-channel with a BasicSR metric: no warning expected: $(cat "$T/.err")"
  expect_exit 0 "--niqe-params with psnr" -- "$E" -m psnr --niqe-params "$T/none.npz" "$T/l.pgm" "$T/l.pgm"
  stderr_has "warning: --niqe-params: option of niqe, and -m psnr asks for none" "the unused --niqe-params is named"
  expect_exit 0 "RASS_NIQE_PARAMS with psnr" -- env RASS_NIQE_PARAMS="$T/none.npz" "$E" -m psnr "$T/l.pgm" "$T/l.pgm"
  grep -q "warning" "$T/.err" && fail "an environment default is not a warning: $(cat "$T/.err")"
  expect_exit 0 "-q keeps the warning quiet" -- "$E" -m psnr --y-channel -q "$T/l.pgm" "$T/l.pgm"
  [ -s "$T/.err" ] && fail "-q: stderr not empty: $(cat "$T/.err")"
fi

# 2. Integer ranges.
if [ -x "$B/rass-model" ]; then
  expect_exit 2 "sample --steps 1e3" -- "$B/rass-model" sample --prompt x --steps 1e3 -o "$T/s.png"
  stderr_has "--steps: expected an integer 1..1000000, got '1e3'" "the value and the range are said"
fi
expect_exit 2 "scenes --size 1e2" -- "$B/rass-scenes" --size 1e2 -o "$T/sc"
stderr_has "--size: expected an integer 64..512, got '1e2'" "scenes --size"
expect_exit 2 "degrade --png-level 2.5" -- "$B/rass-degrade" "$IMG/chelsea.png" -o "$T/d.png" --png-level 2.5
stderr_has "--png-level: expected an integer 0..9, got '2.5'" "degrade --png-level"
expect_exit 2 "eval-miou -n 0" -- "$B/rass-eval-miou" -n 0 "$T/l.pgm" "$T/l.pgm"
stderr_has "--num-classes: expected an integer 1..4096, got '0'" "eval-miou -n"
[ -e "$T/s.png" ] || [ -e "$T/sc" ] || [ -e "$T/d.png" ] && fail "no output after the refusals"
finish
