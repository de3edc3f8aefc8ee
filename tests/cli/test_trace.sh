# RASS_TRACE=FILE (lib/rass/model/op_trace.hpp): rass-restore and
# rass-segment write a Chrome trace of their LibTorch operators, and
# scripts/trace_summary.py reads it. The trace must grow with the work done
# (two images through the model: twice the convolutions of one), hold every
# thread's operators where LibTorch can (>= 2.11: -j 2 runs two lanes), and
# refuse the names a tool's output may not take. Skips (77) without the
# network tools, or where this LibTorch's profiler cannot write a trace.
. "$(dirname "$0")/lib.sh"
R=$B/rass-restore
S=$B/rass-segment
[ -x "$R" ] && [ -x "$S" ] || { echo "skipped: rass-restore / rass-segment not built (no LibTorch)"; exit 77; }
N=$FIX/nn
SD=$N/sd_tiny
LQ=$N/restore_lq.png
mkdir -p "$T/one" "$T/two"
cp "$LQ" "$T/one/a.png"
cp "$LQ" "$T/two/a.png"
cp "$LQ" "$T/two/b.png"
common=(-m "$SD" --process-size 16 -q --threads 1)

RASS_TRACE=$T/probe.json "$R" "${common[@]}" "$LQ" -o "$T/probe.png" 2>"$T/probe.err"
rc=$?
if [ "$rc" -ne 0 ] && grep -q "RASS_TRACE=.*Kineto" "$T/probe.err"; then
  echo "skipped: $(head -1 "$T/probe.err")"
  exit 77
fi
[ "$rc" -eq 0 ] || fail "probe: exit $rc: $(head -c 400 "$T/probe.err")"

# count FILE NAME: how many CPU operator events named NAME the trace holds
# (also checks that it is JSON with a traceEvents list).
count() {
  python3 - "$1" "$2" <<'PY'
import json, sys
events = json.load(open(sys.argv[1]))["traceEvents"]
print(sum(1 for e in events if e.get("cat") == "cpu_op" and e.get("name") == sys.argv[2]))
PY
}
# count_any FILE NAME: events named NAME of any category.
count_any() {
  python3 - "$1" "$2" <<'PY'
import json, sys
events = json.load(open(sys.argv[1]))["traceEvents"]
print(sum(1 for e in events if e.get("name") == sys.argv[2] and e.get("ph") == "X"))
PY
}
# threads FILE: the threads that ran a convolution.
threads() {
  python3 - "$1" <<'PY'
import json, sys
events = json.load(open(sys.argv[1]))["traceEvents"]
print(len({e.get("tid") for e in events if e.get("cat") == "cpu_op" and e.get("name") == "aten::conv2d"}))
PY
}

# Batch mode, one lane, one image per model call: one image, then two.
expect_exit 0 "restore, one image, traced" -- env RASS_TRACE="$T/r1.json" "$R" "${common[@]}" --batch 1 -O "$T/o1" "$T/one"
expect_exit 0 "restore, two images, traced" -- env RASS_TRACE="$T/r2.json" "$R" "${common[@]}" --batch 1 -O "$T/o2" "$T/two"
[ -s "$T/o2/a.png" ] && [ -s "$T/o2/b.png" ] || fail "restore traced: outputs missing"
c1=$(count "$T/r1.json" aten::conv2d) c2=$(count "$T/r2.json" aten::conv2d)
if [ "${c1:-0}" -gt 0 ] && [ "$c2" -eq $((2 * c1)) ]; then ok "restore trace: $c1 convolutions for one image, $c2 for two"
else fail "restore trace: $c1 convolutions for one image, $c2 for two (expected twice as many)"; fi

# One rass::model_call mark per model call; --skip-first-call counts from the second.
marks=$(count_any "$T/r2.json" rass::model_call)
[ "$marks" -eq 2 ] && ok "two model calls, two marks" || fail "two model calls: $marks rass::model_call marks"
# norm_calls ARGS...: the calls column of trace_summary.py's group-norm row (one
# trace; the UNet's and VAE's, none in the text encoder that only the first call runs).
norm_calls() {
  python3 "$SRC/scripts/trace_summary.py" "$@" --top 100 | awk '$1 == "aten::native_group_norm" {print $2; exit}'
}
whole=$(norm_calls "$T/r2.json" --images 1) one=$(norm_calls "$T/r1.json" --images 1)
second=$(norm_calls "$T/r2.json" --images 1 --skip-first-call)
if [ -n "$one" ] && [ "$second" = "$one" ] && [ "$whole" != "$one" ]; then
  ok "--skip-first-call: $second group norms (one call's), $whole with the first"
else
  fail "--skip-first-call: '$second' group norms, expected one call's '$one' (whole trace: '$whole')"
fi

# Every lane's thread (LibTorch >= 2.11: the profiler's profile_all_threads).
case ${RASS_TORCH_FOUND:-} in
  2.1[1-9]* | 2.[2-9][0-9]* | [3-9].*)
    expect_exit 0 "restore -j 2, traced" -- env RASS_TRACE="$T/rj.json" "$R" "${common[@]}" --batch 1 -j 2 -O "$T/oj" "$T/two"
    n=$(threads "$T/rj.json")
    [ "$n" -ge 2 ] && ok "-j 2: convolutions on $n threads" || fail "-j 2: convolutions on $n thread(s), expected 2"
    ;;
  *) echo "note: LibTorch ${RASS_TORCH_FOUND:-?}: the main thread's operators only; -j 2 check skipped" ;;
esac

# scripts/trace_summary.py reads the tools' traces (the script alone: test_trace_summary.sh).
if python3 "$SRC/scripts/trace_summary.py" "$T/r1.json" "$T/r2.json" --images 1 2 >"$T/sum.txt" 2>&1 &&
   grep -q "launching operators per image" "$T/sum.txt" && grep -q "aten::" "$T/sum.txt"; then
  ok "trace_summary.py: $(grep -c 'aten::' "$T/sum.txt") operator rows"
else
  fail "trace_summary.py: $(head -c 400 "$T/sum.txt")"
fi

# rass-segment, single image.
expect_exit 0 "segment, traced" -- env RASS_TRACE="$T/s.json" "$S" -m "$N/ras_tiny" -q --threads 1 "$N/ras_lq.png" -o "$T/s.png"
[ "$(count "$T/s.json" aten::conv2d)" -gt 0 ] && ok "segment trace has convolutions" || fail "segment trace: no convolutions"

# Names a trace may not take.
expect_exit 2 "RASS_TRACE=-" -- env RASS_TRACE=- "$R" "${common[@]}" "$LQ" -o "$T/x.png"
stderr_has "RASS_TRACE=-" "RASS_TRACE=- is named"
cp "$LQ" "$T/in.png"
before=$(cksum <"$T/in.png")
expect_exit 2 "RASS_TRACE naming the input" -- env RASS_TRACE="$T/in.png" "$R" "${common[@]}" "$T/in.png" -o "$T/y.png"
stderr_has "RASS_TRACE" "the refusal names RASS_TRACE"
[ "$(cksum <"$T/in.png")" = "$before" ] || fail "the input was changed"
# A trace that cannot be written is refused before the model runs.
expect_exit 2 "RASS_TRACE in a missing folder" -- env RASS_TRACE="$T/missing/t.json" "$R" "${common[@]}" --batch 1 -O "$T/o3" "$T/one"
stderr_has "RASS_TRACE=$T/missing/t.json: no folder" "the error names the trace and what is wrong"
[ -e "$T/o3/a.png" ] && fail "the model ran although the trace could not be written"
mkdir "$T/adir"
expect_exit 2 "RASS_TRACE naming a directory" -- env RASS_TRACE="$T/adir" "$R" "${common[@]}" "$LQ" -o "$T/z.png"
stderr_has "is a directory" "the error says it is a directory"
mkfifo "$T/fifo"
expect_exit 2 "RASS_TRACE naming a FIFO" -- env RASS_TRACE="$T/fifo" "$R" "${common[@]}" "$LQ" -o "$T/z.png"
stderr_has "not a regular file" "the error says it is not a regular file"
[ -p "$T/fifo" ] || fail "the FIFO was replaced"
# A run that fails after the trace started (its output on a full disk) writes no trace.
ln -s /dev/full "$T/full.png"
expect_exit 1 "a traced run writing to a full disk" -- env RASS_TRACE="$T/f.json" "$R" "${common[@]}" "$LQ" -o "$T/full.png"
stderr_has "No space left on device" "the full disk is named"
[ -e "$T/f.json" ] && fail "a failed run left a trace" || ok "the failed run left no trace"
# No temporary file left behind by any of the above.
ls -a "$T" "$T/o1" "$T/o2" | grep -q '\.tmp\.' && fail "a temporary file was left: $(ls -a "$T" | grep '\.tmp\.')"
finish
