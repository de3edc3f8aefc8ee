# Hostile invocations found by the second hostile sweep (2026-12-03), one
# check each: rass-model convert writing over its input, a run ended by one
# non-UTF-8 string in --json output, -j far above the work, duplicate keys in
# the network tools, an output folder that is a file (found only after the
# work), stdin/stdout redirected from/to an input, two reports naming one
# file, a huge --process-size, rass-gen-docs "". Each refusal also checks that
# the file it protects is unchanged.
. "$(dirname "$0")/lib.sh"
R=$B/rass-restore
S=$B/rass-segment
M=$B/rass-model
[ -x "$R" ] || { echo "skipped: the network tools are not built (no LibTorch)"; exit 77; }
N=$FIX/nn
LQ=$N/restore_lq.png
RAS=$N/ras_tiny

# unchanged FILE COPY WHAT: FILE still has COPY's bytes.
unchanged() { cmp -s "$1" "$2" || fail "$3: $1 was changed"; }

# 1. rass-model convert never writes over its input (any spelling, a link,
#    a merged file or config inside the folder it reads).
cp -r "$N/sd_tiny" "$T/sd"
U=$T/sd/unet/diffusion_pytorch_model.safetensors
cp "$U" "$T/unet.orig"
expect_exit 2 "convert -o = its input" -- "$M" convert "$U" -o "$U" --to-dtype bf16
stderr_has "one of the inputs" "the refusal names the reason"
expect_exit 2 "convert -o, another spelling" -- bash -c \
  "cd '$T' && '$M' convert sd/unet/diffusion_pytorch_model.safetensors -o ./sd/unet/../unet/diffusion_pytorch_model.safetensors --drop-ema"
ln -s "$U" "$T/link.safetensors"
expect_exit 2 "convert through a link to the output" -- "$M" convert "$T/link.safetensors" -o "$U" --to-dtype fp16
expect_exit 2 "convert --merge over a file of its folder" -- "$M" convert "$T/sd" --merge -o "$T/sd/vae/config.json"
stderr_has "one of the inputs" "the file is named"
expect_exit 2 "convert --merge into its own folder" -- "$M" convert "$T/sd" --merge -o "$T/sd/merged.safetensors"
stderr_has "inside the model folder" "the folder is named"
unchanged "$U" "$T/unet.orig" "rass-model convert"
expect_exit 0 "convert to a new file still works" -- "$M" convert "$U" -o "$T/unet16.safetensors" --to-dtype bf16
expect_exit 2 "run -o over its --sample" -- "$M" run "$T/sd" --component vae-decode --sample "$T/unet.orig" -o "$T/unet.orig"
expect_exit 2 "sample -o - appended to a model file" -- bash -c \
  "'$M' sample '$T/sd' --prompt hi -o - >>'$T/sd/unet/config.json'"
stderr_has "stdout is one of the inputs" "stdout's file is named"

# 2. Non-UTF-8 text in --json output: the item is one bad item (name) or the
#    text is written with U+FFFD (prompt); the run goes on, the JSON is valid.
mkdir -p "$T/w"
cp "$LQ" "$T/w/a.png"
cp "$LQ" "$T/w/$(printf 'bad\377').png"
cp "$LQ" "$T/w/c.png"
expect_exit 3 "a non-UTF-8 file name in a --json batch" -- "$R" -m "$N/sd_tiny" --process-size 16 "$T/w" -O "$T/wo" --json -q
[ -f "$T/wo/a.png" ] && [ -f "$T/wo/c.png" ] || fail "the items around the bad name are written"
[ "$(grep -c '"output"' "$T/.out")" = 2 ] || fail "two records for the two good items: $(cat "$T/.out")"
printf 'caf\351, dog\n' >"$T/latin1.txt"
expect_exit 0 "non-UTF-8 tags with --json" -- "$R" -m "$N/sd_tiny" --process-size 16 "$LQ" -o "$T/t1.png" \
  --tags "$T/latin1.txt" --json
grep -q '"prompt":"caf' "$T/.out" || fail "the record is printed: $(cat "$T/.out")"
expect_exit 0 "non-UTF-8 prompt, rass-segment --json" -- "$S" -m "$RAS" --no-resize -q "$LQ" -o "$T/s1.png" \
  --prompt "$(printf 'a\377b')" --json
grep -q '"prompt"' "$T/.out" || fail "rass-segment prints its record"

# 3. -j far above the work: capped (no abort, no 1024 threads); past 1024,
#    as --threads, refused (every item of a large batch in flight at once).
mkdir -p "$T/two"
cp "$LQ" "$T/two/x.png"
cp "$LQ" "$T/two/y.png"
expect_exit 0 "rass-restore -j 1024" -- "$R" -m "$N/sd_tiny" --process-size 16 "$T/two" -O "$T/j1" -j 1024 -q
expect_exit 0 "rass-segment -j 1024" -- "$S" -m "$RAS" --no-resize "$T/two" -O "$T/j2" -j 1024 -q
expect_exit 2 "rass-segment -j 2147483647" -- "$S" -m "$RAS" --no-resize "$T/two" -O "$T/j3" -j 2147483647 -q

# 4. Duplicate keys (a.png and a.ppm): the later one is a bad item, the rest run.
mkdir -p "$T/dup"
cp "$LQ" "$T/dup/a.png"
cp "$LQ" "$T/dup/a.ppm"  # a PNG named .ppm: sniffed, same key
cp "$LQ" "$T/dup/b.png"
expect_exit 3 "rass-restore: a duplicate key is one bad item" -- "$R" -m "$N/sd_tiny" --process-size 16 "$T/dup" -O "$T/d1" -q
stderr_has "same key 'a'" "the duplicate is named"
[ -f "$T/d1/a.png" ] && [ -f "$T/d1/b.png" ] || fail "rass-restore: the first a and b are written"
expect_exit 3 "rass-segment: a duplicate key is one bad item" -- "$S" -m "$RAS" --no-resize "$T/dup" -O "$T/d2" -q
[ -f "$T/d2/a.png" ] && [ -f "$T/d2/b.png" ] || fail "rass-segment: the first a and b are written"

# 5. An output folder that cannot be made is refused before any work.
: >"$T/afile"
expect_exit 2 "-O names a file" -- "$R" -m "$N/sd_tiny" --process-size 16 "$T/two" -O "$T/afile"
stderr_has "exists and is not a directory" "the reason is given"
expect_exit 2 "-O below a file" -- "$R" -m "$N/sd_tiny" --process-size 16 "$T/two" -O "$T/afile/sub"
expect_exit 2 "rass-segment --color names a file" -- "$S" -m "$RAS" "$T/two" -O "$T/so" --color "$T/afile"
expect_exit 2 "-o below a file" -- "$R" -m "$N/sd_tiny" --process-size 16 "$LQ" -o "$T/afile/x.png"
[ -s "$T/afile" ] && fail "the file in the way is untouched"

# 6. stdin or stdout redirected from or to an input.
cp "$LQ" "$T/s.png"
expect_exit 2 "- -o X < X" -- bash -c "'$R' -m '$N/sd_tiny' --process-size 16 - -o '$T/s.png' <'$T/s.png'"
expect_exit 2 "X -o - >> X" -- bash -c "'$R' -m '$N/sd_tiny' --process-size 16 '$T/s.png' -o - >>'$T/s.png'"
stderr_has "stdout is one of the inputs" "stdout's file is named"
unchanged "$T/s.png" "$LQ" "stdin/stdout redirection"

# 7. Two reports of one run naming the same file.
E=$B/rass-eval-miou
MI=$FIX/miou
expect_exit 2 "--csv and --per-image on one file" -- "$E" --match-stem "$MI/pred" "$MI/gt" -n 3 --csv "$T/x.csv" --per-image "$T/x.csv"
stderr_has "name the same file" "the clash is named"
expect_exit 2 "--csv and --confusion, two spellings" -- "$E" --match-stem "$MI/pred" "$MI/gt" -n 3 --csv "$T/x.csv" \
  --confusion "$T/./x.csv"
expect_exit 2 "--per-image onto the file stdout goes to" -- bash -c \
  "'$E' --match-stem '$MI/pred' '$MI/gt' -n 3 --csv - --per-image '$T/y.csv' >'$T/y.csv'"
expect_exit 0 "two reports into /dev/null (written in place, nothing replaced)" -- "$E" --match-stem "$MI/pred" "$MI/gt" \
  -n 3 --csv /dev/null --per-image /dev/null -q

# 8. A --process-size that would make a huge image: a bad item naming it, not
#    an int overflow ("too small") or an out-of-memory.
expect_exit 3 "--process-size 2147483647" -- "$R" -m "$N/sd_tiny" --process-size 2147483647 "$LQ" -o "$T/pp.png"
stderr_has "lower --process-size" "the advice is given"

# 9. A flag's environment switch takes 1/0, true/false, yes/no, on/off; a
#    parse error names the variable the value came from.
expect_exit 2 "RASS_CUDA_GRAPHS=2" -- env RASS_CUDA_GRAPHS=2 "$R" -m "$N/sd_tiny" --process-size 16 "$LQ" -o "$T/e1.png"
stderr_has "RASS_CUDA_GRAPHS=2" "the variable is named"
expect_exit 2 "RASS_TIMINGS=maybe" -- env RASS_TIMINGS=maybe "$S" -m "$RAS" --no-resize "$LQ" -o "$T/e2.png"
stderr_has "RASS_TIMINGS=maybe" "the variable is named"
expect_exit 0 "RASS_TIMINGS=Off" -- env RASS_TIMINGS=Off "$R" -m "$N/sd_tiny" --process-size 16 -q "$LQ" -o "$T/e3.png"
grep -q "seconds" "$T/.err" && fail "RASS_TIMINGS=Off prints no table"
expect_exit 2 "RASS_JOBS=abc" -- env RASS_JOBS=abc "$B/rass-degrade" "$LQ" -o "$T/e4.png"
stderr_has "RASS_JOBS=abc" "a non-flag variable is named too"
expect_exit 2 "-j abc with RASS_JOBS=4 set" -- env RASS_JOBS=4 "$B/rass-degrade" "$LQ" -o "$T/e5.png" -j abc
grep -q "RASS_JOBS" "$T/.err" && fail "a command-line error does not blame the environment: $(cat "$T/.err")"
expect_exit 0 "RASS_TIMINGS=2 with --timings given (the command line wins)" -- env RASS_TIMINGS=2 "$R" -m "$N/sd_tiny" \
  --process-size 16 -q --timings "$LQ" -o "$T/e6.png"

# 10. A write killed midway (SIGXFSZ under ulimit -f) leaves no temporary
#     file (the data go into an unnamed file first).
#     Where $T's filesystem has no O_TMPFILE the named temporary stays: not checked there.
mkdir -p "$T/big"
if python3 -c 'import os, sys; os.close(os.open(sys.argv[1], os.O_TMPFILE | os.O_WRONLY))' "$T/big" 2>/dev/null; then
  # (the inner shell reports the signal, into /dev/null, and ends well)
  bash -c 'ulimit -f 1; "$0" "$@"; true' "$B/rass-degrade" "$SRC/examples/images/astronaut.png" -o "$T/big/out.png" -q \
    2>/dev/null
  [ -s "$T/big/out.png" ] && fail "the write was cut off (the check needs an output over 1 KiB)"
  ls "$T/big" | grep -q "\.tmp\." && fail "a killed write left a temporary file: $(ls "$T/big")"
else
  echo "not checked: no O_TMPFILE on $T (or no python3 to tell)"
fi

# 11. rass-gen-docs "" (an unset variable) writes nothing at /.
expect_exit 2 "rass-gen-docs ''" -- "$B/rass-gen-docs" ""
expect_exit 0 "rass-gen-docs --help" -- "$B/rass-gen-docs" --help

finish
