# Helpers for the CLI tests. Each test sources this, gets $T (a scratch dir
# removed on exit), $B (the build dir with the binaries) and $SRC.
set -u
B=${RASS_BIN:?RASS_BIN must point at the build directory}
SRC=${RASS_SOURCE_DIR:?}
IMG=$SRC/examples/images
FIX=$SRC/tests/fixtures
T=$(mktemp -d /tmp/rass-cli.XXXXXX)
trap 'rm -rf "$T"' EXIT
failures=0

fail() { echo "FAIL: $*" >&2; failures=$((failures + 1)); }
ok() { echo "ok: $*"; }

# expect_exit CODE DESCRIPTION -- command...
expect_exit() {
  local want=$1 what=$2; shift 3
  "$@" >"$T/.out" 2>"$T/.err"
  local got=$?
  if [ "$got" -ne "$want" ]; then
    fail "$what: exit $got, expected $want; stderr: $(head -c 400 "$T/.err")"
    return 1
  fi
  ok "$what (exit $got)"
}

# stderr_has TEXT DESCRIPTION: the last expect_exit's stderr contains TEXT.
stderr_has() {
  grep -qF -- "$1" "$T/.err" || fail "$2: stderr lacks '$1': $(head -c 400 "$T/.err")"
}

# torch_python [CANDIDATE...]: the first of $RASS_TORCH_PYTHON, the
# candidates and python3 that imports torch (and numpy), or nothing. The
# converter tests run scripts/convert_*.py with it and skip (77) without one.
torch_python() {
  local c
  for c in "${RASS_TORCH_PYTHON:-}" "$@" python3; do
    if [ -n "$c" ] && command -v "$c" >/dev/null && "$c" -c "import torch, numpy" 2>/dev/null; then echo "$c"; return; fi
  done
}

# rass-restore and rass-segment record each output's settings (key, input,
# model, seed, ...) in a "rass" iTXt chunk right after IHDR. Two outputs of
# different items (stdin and a file, a single run and a batch item) hold
# different chunks: same_pixels compares them with that chunk cut out (the
# encoder is the same, so equal pixels give equal bytes).
strip_rass_text() {
  local f=$1 n
  if [ "$(dd if="$f" bs=1 skip=37 count=4 2>/dev/null)" = iTXt ]; then
    n=$(od -An -tu1 -j33 -N4 "$f" | awk '{print $1 * 16777216 + $2 * 65536 + $3 * 256 + $4}')
    { head -c 33 "$f"; tail -c +$((33 + 12 + n + 1)) "$f"; }
  else
    cat "$f"
  fi
}
same_pixels() { cmp -s <(strip_rass_text "$1") <(strip_rass_text "$2"); }
# Two images equal within float rounding: PSNR at least $3 dB (default 50;
# identical images give 80, one pixel a level apart on a 64x64 image about
# 80, a real difference such as tiled against whole 10-30). For outputs of
# two numerically equivalent paths (another thread count, the attention
# that captures maps against the fused one): LibTorch 2.x's CPU kernels on
# some CPUs (Intel Xeon) round them apart where others (AMD EPYC) do not.
close_pixels() {
  local psnr
  psnr=$("$B/rass-eval-iqa" -m psnr "$1" "$2" --json -q 2>/dev/null | tr -d ' \n' | sed -n 's/.*"mean":{"psnr":\([0-9.eE+-]*\)}.*/\1/p')
  [ -n "$psnr" ] && awk -v p="$psnr" -v m="${3:-50}" 'BEGIN { exit !(p >= m) }'
}

finish() {
  if [ "$failures" -gt 0 ]; then
    echo "$failures failure(s)" >&2
    exit 1
  fi
  exit 0
}
