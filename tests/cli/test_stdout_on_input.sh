# stdout appended to or opened read-write on an input file (`>> a.png`,
# `1<> a.png`): whatever a tool prints there (records, a summary, an image)
# would go into the input. Every tool refuses before any work (exit 2) and the
# input keeps its bytes; stdout on another file, a pipe or /dev/null is fine.
# And an output named /dev/stdout (or a link to /proc/self/fd/1) goes to the
# file stdout is redirected to; the name is not replaced by a file.
. "$(dirname "$0")/lib.sh"
D=$B/rass-degrade
E=$B/rass-eval-iqa
MI=$FIX/miou
cp "$FIX/metrics/pair_a.png" "$T/a.png"
cp "$FIX/metrics/pair_b.png" "$T/b.png"
cp "$T/a.png" "$T/a.orig"

expect_exit 2 "rass-degrade --json 1<> its input" -- bash -c "'$D' '$T/a.png' -o '$T/lq.png' -q --json 1<>'$T/a.png'"
stderr_has "stdout is one of the inputs" "the reason is given"
stderr_has "$T/a.png" "the input is named"
[ -e "$T/lq.png" ] && fail "nothing written after the refusal"
expect_exit 2 "rass-eval-iqa's summary >> its input" -- bash -c "'$E' -m psnr '$T/a.png' '$T/b.png' >>'$T/a.png'"
expect_exit 2 "rass-eval-iqa --json >> its second input" -- bash -c "'$E' -m psnr --json '$T/a.png' '$T/b.png' >>'$T/b.png'"
expect_exit 2 "rass-eval-miou --json 1<> a label map" -- bash -c \
  "cp -r '$MI' '$T/mi' && '$B/rass-eval-miou' --match-stem '$T/mi/pred' '$T/mi/gt' -n 3 --json 1<>'$T/mi/gt/$(ls "$MI/gt" | head -1)'"
cmp -s "$T/a.png" "$T/a.orig" || fail "the input was changed"
cmp -s "$T/b.png" "$FIX/metrics/pair_b.png" || fail "the second input was changed"
diff -r "$MI" "$T/mi" >/dev/null || fail "the label maps were changed"

# Not refused: stdout on a file that is no input, a pipe, /dev/null.
expect_exit 0 "stdout on another file" -- bash -c "'$E' -m psnr '$T/a.png' '$T/b.png' >>'$T/log.txt'"
[ -s "$T/log.txt" ] || fail "the summary went to the log"
expect_exit 0 "stdout to a pipe" -- bash -c "'$E' -m psnr --json '$T/a.png' '$T/b.png' | cat >/dev/null"
expect_exit 0 "stdout on /dev/null" -- bash -c "'$D' '$T/a.png' -o '$T/lq.png' -q --json >/dev/null"

ln -s /proc/self/fd/1 "$T/so"
expect_exit 0 "--csv through a link to /proc/self/fd/1" -- bash -c \
  "'$B/rass-eval-miou' --match-stem '$MI/pred' '$MI/gt' -n 3 -q --csv '$T/so' >'$T/via-link.csv'"
[ -L "$T/so" ] || fail "the link was replaced by a file"
grep -q "^class" "$T/via-link.csv" || fail "the CSV went to stdout's file: $(head -c 200 "$T/via-link.csv")"
expect_exit 0 "--csv /dev/stdout" -- bash -c \
  "'$B/rass-eval-miou' --match-stem '$MI/pred' '$MI/gt' -n 3 -q --csv /dev/stdout >'$T/dev-stdout.csv'"
cmp -s "$T/via-link.csv" "$T/dev-stdout.csv" || fail "/dev/stdout and the link wrote the same CSV"
"$B/rass-eval-miou" --match-stem "$MI/pred" "$MI/gt" -n 3 -q --csv - >"$T/dash.csv" 2>/dev/null
cmp -s "$T/dash.csv" "$T/dev-stdout.csv" || fail "/dev/stdout is '-': the CSV alone, no table after it"
finish
