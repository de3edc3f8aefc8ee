# The checks of 2026-12-07 (twentieth session), each failing on the binaries
# before its fix:
# 1. An out-of-memory error of one input (-o FILE) did not name the input (a
#    batch item's did).
# 2. --device cpu:1 was taken by LibTorch 1.13 (there is one CPU device).
# 3. rass-degrade -o x.pgm wrote a colour (P6) image under a gray name.
. "$(dirname "$0")/lib.sh"
N=$FIX/nn

# 1. A 2000x2000 image under a 1.5 GB address-space limit: the model's
# allocation fails, and the message names the image.
if [ -x "$B/rass-restore" ]; then
  python3 -c "import sys; sys.stdout.buffer.write(b'P6\\n2000 2000\\n255\\n' + bytes(range(256)) * 46875)" >"$T/big.ppm"
  # A LibTorch build that cannot even start under the limit (CUDA's
  # libraries map more) has nothing to show here.
  if (ulimit -v 1500000 && "$B/rass-restore" --help >/dev/null 2>&1); then
    expect_exit 1 "restore: out of memory on one image" -- \
      bash -c "ulimit -v 1500000; exec '$B/rass-restore' -m '$N/sd_tiny' --threads 1 --vae-mode '$T/big.ppm' -o '$T/big.png'"
    stderr_has "big.ppm: out of memory" "the message names the input"
    [ -e "$T/big.png" ] && fail "restore: an output after the failure"
  else
    echo "skipped: rass-restore does not start under a 1.5 GB address-space limit"
  fi
fi

# 2. The CPU has no index but 0.
if [ -x "$B/rass-restore" ]; then
  expect_exit 2 "--device cpu:1" -- "$B/rass-restore" -m "$N/sd_tiny" --device cpu:1 "$N/restore_lq.png" -o "$T/d.png"
  stderr_has "--device cpu:1: the CPU is one device" "the message says why"
  expect_exit 0 "--device cpu:0" -- "$B/rass-restore" -m "$N/sd_tiny" --device cpu:0 --process-size 16 --vae-mode \
    --threads 1 "$N/restore_lq.png" -o "$T/d.png"
fi

# 3. A .pgm name for a colour LQ image; a gray one still writes it.
if [ -x "$B/rass-degrade" ]; then
  expect_exit 2 "degrade: colour to .pgm" -- "$B/rass-degrade" "$FIX/images/rgb16.png" --accept-16bit --seed 1 -o "$T/c.pgm"
  stderr_has "a .pgm holds a gray image" "the message says why"
  [ -e "$T/c.pgm" ] && fail "degrade: a .pgm was written"
  expect_exit 0 "degrade: gray to .pgm" -- "$B/rass-degrade" "$FIX/images/gray64.png" --seed 1 -o "$T/g.pgm"
  [ "$(head -c 2 "$T/g.pgm")" = P5 ] || fail "degrade: the gray output is not P5"
fi

finish
