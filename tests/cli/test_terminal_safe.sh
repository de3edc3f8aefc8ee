# A file name, key or argument with terminal control sequences in it is
# shown, not obeyed: the tools' messages write control characters as \xHH
# (and C1 controls as \u00HH), so a hostile name cannot retitle, clear or
# recolour the user's terminal. Before, only NUL was escaped.
. "$(dirname "$0")/lib.sh"
[ -x "$B/rass-degrade" ] && [ -x "$B/rass-eval-iqa" ] || { echo "skipped: tools not built"; exit 77; }
esc=$(printf '\033')
# no_control DESCRIPTION: the last stderr holds no ESC, BEL, CR or C1 CSI byte.
no_control() {
  if LC_ALL=C grep -q "[$(printf '\033\007\r')]" "$T/.err" || LC_ALL=C grep -q "$(printf '\302\233')" "$T/.err"; then
    fail "$1: a control character reached stderr: $(od -c "$T/.err" | head -5)"
  else
    ok "$1: no control character on stderr"
  fi
}
mkdir -p "$T/in"
bad="$T/in/x${esc}]0;owned$(printf '\007')${esc}[2J$(printf '\302\233')31m.png"
echo "not an image" >"$bad"
cp "$IMG/astronaut.png" "$T/in/good.png"

# A batch tool's per-item message (the batch layer's reporter).
expect_exit 3 "rass-degrade over a hostile name" -- "$B/rass-degrade" "$T/in" -o "$T/out" --seed 1 -q
stderr_has 'x\x1b]0;owned\x07\x1b[2J\u009b31m.png' "the name is shown with its escapes"
[ "$(grep -o 'owned' "$T/.err" | wc -l)" -eq 1 ] || fail "the name is shown once: $(cat -v "$T/.err")"
no_control "rass-degrade"
[ -s "$T/out/good.png" ] || fail "the good image is still written"
# --json records on stdout (rass-segment's per item, with the embedded mini
# model): nlohmann writes C1 controls raw; they are \u escapes.
if [ -x "$B/rass-segment" ] && [ -d "$SRC/models/mini/segment" ]; then
  expect_exit 3 "rass-segment --json over a hostile name" -- "$B/rass-segment" "$T/in" -O "$T/outj" -q --json
  grep -qF '"key":"x\u001b]0;owned\u0007\u001b[2J\u009b31m"' "$T/.out" || fail "the key's controls are \\u escapes: $(cat -v "$T/.out")"
  if LC_ALL=C grep -q "[$(printf '\033\007\r')]" "$T/.out" || LC_ALL=C grep -q "$(printf '\302\233')" "$T/.out"; then
    fail "a control character reached stdout: $(cat -v "$T/.out")"
  else
    ok "--json: no control character on stdout"
  fi
  if command -v python3 >/dev/null; then
    python3 -c 'import json,sys; [json.loads(l) for l in open(sys.argv[1], encoding="utf-8")]' "$T/.out" || fail "--json lines are not JSON"
  fi
else
  echo "skipped: the --json case (no rass-segment or mini model)"
fi
# rass-degrade's single-image record on stdout (--json, --record -): the key's C1 CSI escaped too.
c1="$T/in/c1$(printf '\302\233')31m.png"
cp "$IMG/astronaut.png" "$c1"
expect_exit 0 "rass-degrade --json of a name with C1 CSI" -- "$B/rass-degrade" "$c1" -o "$T/c1.png" --json -p noise -s 1
grep -qF '"key": "c1\u009b31m"' "$T/.out" || fail "single mode --json: the key's C1 CSI is \\u009b: $(cat -v "$T/.out" | head -5)"
if LC_ALL=C grep -q "$(printf '\302\233')" "$T/.out"; then fail "single mode --json: a raw C1 CSI on stdout"; else ok "single mode --json: no raw C1"; fi
rm -f "$c1"
# A single-input error (the tool's top-level message).
expect_exit 3 "rass-eval-iqa on a hostile name" -- "$B/rass-eval-iqa" -m psnr "$bad" "$T/in/good.png"
stderr_has '\x1b[2J' "the escape is shown"
no_control "rass-eval-iqa"
# A usage error naming the argument (CLI11's message).
expect_exit 2 "an unknown flag with an escape" -- "$B/rass-degrade" "--bogus${esc}[2J" "$T/in/good.png" -o "$T/o.png"
no_control "usage error"
# A bad value from the environment: the note naming it is escaped too.
expect_exit 2 "an environment value with an escape" -- env RASS_JOBS="${esc}[31m" "$B/rass-degrade" "$T/in/good.png" -o "$T/o.png"
stderr_has 'RASS_JOBS=\x1b[31m' "the value is shown with its escape"
no_control "environment note"
# A lone 0x9b byte (CSI to a terminal in an 8-bit mode; not UTF-8) in a name.
lone="$T/in/lone$(printf '\233')2J.png"
echo "not an image" >"$lone"
expect_exit 3 "rass-eval-iqa on a name with a lone 0x9b" -- "$B/rass-eval-iqa" -m psnr "$lone" "$T/in/good.png"
stderr_has 'lone\x9b2J.png' "the byte is shown as \x9b"
if LC_ALL=C grep -q "$(printf '\233')" "$T/.err"; then fail "a raw 0x9b byte reached stderr"; else ok "no raw 0x9b byte"; fi
# Plain-text tables on stdout: a key or class name is a cell, escaped (a
# newline in one broke the table's rows); --json keeps the raw text.
no_control_out() {
  if LC_ALL=C grep -q "[$(printf '\033\007\r')]" "$T/.out" || LC_ALL=C grep -q "$(printf '\302\233')" "$T/.out"; then
    fail "$1: a control character reached stdout: $(cat -v "$T/.out" | head -5)"
  else
    ok "$1: no control character on stdout"
  fi
}
mkdir -p "$T/ta" "$T/tb"
tname="t${esc}]0;owned$(printf '\007')${esc}[2J"
cp "$IMG/astronaut.png" "$T/ta/$tname.png"
cp "$IMG/astronaut.png" "$T/tb/$tname.png"
expect_exit 0 "rass-eval-iqa table of a hostile key" -- "$B/rass-eval-iqa" -m psnr "$T/ta" "$T/tb" -q
grep -qF 't\x1b]0;owned\x07\x1b[2J' "$T/.out" || fail "the table shows the key's escapes: $(cat -v "$T/.out")"
no_control_out "rass-eval-iqa table"
if [ -x "$B/rass-eval-miou" ]; then
  printf 'P5\n4 4\n255\n' >"$T/lab.pgm"
  head -c 16 /dev/zero >>"$T/lab.pgm"
  printf '%s\nroad\tside\n' "${esc}[31mred" >"$T/cls.txt"
  expect_exit 0 "rass-eval-miou table of hostile class names" -- "$B/rass-eval-miou" -n 2 --classes "$T/cls.txt" -q \
    "$T/lab.pgm" "$T/lab.pgm"
  grep -qF '\x1b[31mred' "$T/.out" || fail "the class column shows the escape: $(cat -v "$T/.out")"
  grep -qF 'road\tside' "$T/.out" || fail "a tab in a class name is shown as \\t: $(cat -v "$T/.out")"
  no_control_out "rass-eval-miou table"
fi
# The dispatcher naming a tool that does not exist.
if [ -x "$B/rass" ]; then
  expect_exit 2 "rass with a hostile tool name" -- "$B/rass" "nope${esc}[2J"
  stderr_has 'nope\x1b[2J' "the name is shown with its escape"
  no_control "rass dispatcher"
fi
finish
