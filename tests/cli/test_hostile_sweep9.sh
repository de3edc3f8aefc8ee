# The checks of 2026-12-05 (sixth session), each failing on the binaries
# before its fix:
# 1. rass-eval-iqa --y-channel with no BasicSR metric (psnr@basicsr,
#    ssim@basicsr) and --niqe-params with no niqe changed nothing without a
#    word; they are now named in a warning, as the deep-metric options are.
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
finish
