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

finish() {
  if [ "$failures" -gt 0 ]; then
    echo "$failures failure(s)" >&2
    exit 1
  fi
  exit 0
}
