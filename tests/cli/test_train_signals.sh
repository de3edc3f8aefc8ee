#!/usr/bin/env bash
# rass-train and signals (core/signals.hpp): it stops after the step in
# progress on SIGTERM or SIGUSR1, writes a checkpoint there, ends by that
# signal, and --resume then reaches the uninterrupted run's weights byte for
# byte; a closed pipe on stderr does not end it before its checkpoint; in a
# 2-process run a signal to one process stops both at the same step, both
# ending by it; a signal at a --stop-after slice's checkpoint is named.
# (SIGINT is not sent: a background job of a script starts with it ignored,
# and ignored signals stay ignored.)
source "$(dirname "$0")/lib.sh"
R=$B/rass-train
[ -x "$R" ] || { echo "skipped: rass-train not built (no LibTorch)"; exit 77; }
big=(--set selftest.inputs=512 --set selftest.outputs=256 --batch 32 --checkpoint-every 1000 --threads 1 -q)
newest() { ls "$1/checkpoints" 2>/dev/null | sed -n 's/^step_\([0-9]*\)\.safetensors$/\1/p' | sort -n | tail -1; }
lines() { local n; n=$(grep -c . "$1/log.jsonl" 2>/dev/null); echo "${n:-0}"; }
# signal_after RUN_DIR PID SIGNAL N: sends SIGNAL once the run has logged N steps.
signal_after() {
  for _ in $(seq 1 1200); do
    [ "$(lines "$1")" -ge "$4" ] && break
    sleep 0.05
  done
  kill -"$3" "$2" 2>/dev/null
}

# 2. SIGTERM between checkpoints (every 1000 steps): the run writes one at the
#    step it stopped after, ends by SIGTERM, and --resume goes on exactly.
"$R" selftest -o "$T/term" --steps 5000 "${big[@]}" 2>"$T/term.err" &
pid=$!
signal_after "$T/term" $pid TERM 10
wait $pid
got=$?
stop=$(newest "$T/term")
if [ $got -ne 143 ]; then
  fail "SIGTERM: status $got, expected 143; $(head -c 300 "$T/term.err")"
elif [ -z "$stop" ] || [ "$stop" -ge 5000 ]; then
  fail "SIGTERM: no checkpoint at the stop (newest: '$stop')"
else
  ok "SIGTERM: ended by SIGTERM with a checkpoint at step $stop"
  [ "$(lines "$T/term")" -eq "$stop" ] || fail "SIGTERM: the log has $(lines "$T/term") steps, the checkpoint $stop"
  grep -q "SIGTERM: stopping after this step" "$T/term.err" || fail "no note when the signal came: $(head -c 300 "$T/term.err")"
  [ -e "$T/term/final" ] && fail "SIGTERM: a stopped run exported a model"
  steps=$((stop + 15))
  expect_exit 0 "--resume after SIGTERM" -- "$R" selftest -o "$T/term" --steps $steps --resume "${big[@]}"
  expect_exit 0 "the uninterrupted run" -- "$R" selftest -o "$T/whole" --steps $steps "${big[@]}"
  cmp -s "$T/term/final/selftest.safetensors" "$T/whole/final/selftest.safetensors" &&
    ok "resumed weights equal the uninterrupted run's byte for byte" ||
    fail "resumed weights differ from the uninterrupted run's"
fi

# 3. SIGUSR1 (a batch system's warning before its time limit, e.g. Slurm's
#    --signal=USR1@120): the same clean stop, the summary names the signal.
"$R" selftest -o "$T/usr1" --steps 5000 --json "${big[@]}" >"$T/usr1.json" 2>"$T/usr1.err" &
pid=$!
signal_after "$T/usr1" $pid USR1 3
wait $pid
got=$?
[ $got -eq $((128 + $(kill -l USR1))) ] && ok "SIGUSR1: ended by SIGUSR1" || fail "SIGUSR1: status $got; $(head -c 300 "$T/usr1.err")"
grep -qF '"stopped_by":"SIGUSR1"' "$T/usr1.json" || fail "--json lacks stopped_by: $(cat "$T/usr1.json")"
stop=$(newest "$T/usr1")
[ -n "$stop" ] && [ "$(lines "$T/usr1")" -eq "$stop" ] || fail "SIGUSR1: checkpoint '$stop', log $(lines "$T/usr1") steps"

# 4. A closed pipe on stderr (`rass-train ... 2>&1 | tee log`, tee ended by
#    the same Ctrl-C): the note written when the signal comes raises
#    SIGPIPE, which must not end the run before its checkpoint (it did).
mkfifo "$T/errpipe"
cat "$T/errpipe" >/dev/null &
reader=$!
"$R" selftest -o "$T/piped" --steps 5000 "${big[@]}" 2>"$T/errpipe" &
pid=$!
for _ in $(seq 1 1200); do [ "$(lines "$T/piped")" -ge 3 ] && break; sleep 0.05; done
kill $reader 2>/dev/null
wait $reader 2>/dev/null
kill -TERM $pid
wait $pid
got=$?
stop=$(newest "$T/piped")
[ $got -eq 143 ] && [ -n "$stop" ] && [ "$(lines "$T/piped")" -eq "$stop" ] &&
  ok "stderr a closed pipe: SIGTERM still stops cleanly at step $stop" ||
  fail "stderr a closed pipe: status $got, checkpoint '$stop', log $(lines "$T/piped") steps"

# 5. --stop-after's slice with a signal after its last step's all-reduce (at
#    its checkpoint's link): the slice ends as it would, the process by the
#    signal, and the summary names it (it said null).
if command -v strace >/dev/null && strace -f -o /dev/null -e trace=linkat true 2>/dev/null; then
  (strace -f -o /dev/null -e trace=linkat -e inject=linkat:signal=SIGTERM:when=2 \
    "$R" selftest -o "$T/slice" --steps 10 --set loop.stop_after=3 --threads 1 --json >"$T/slice.json" 2>"$T/slice.err"
   echo $? >"$T/slice.rc") 2>/dev/null
  got=$(cat "$T/slice.rc")
  [ "$got" -eq 143 ] && grep -qF '"stopped_by":"SIGTERM"' "$T/slice.json" && ok "a signal at the slice's checkpoint is named" ||
    fail "slice: status $got, summary $(cat "$T/slice.json")"
fi

# 6. Two processes, SIGUSR1 to rank 1 only: both stop after the same step,
#    rank 0 writes the checkpoint, both end by SIGUSR1 (rank 0 ended by
#    SIGTERM, whatever the signal).
port=$((20000 + RANDOM % 20000))
dist=(env WORLD_SIZE=2 MASTER_ADDR=127.0.0.1 MASTER_PORT=$port)
"${dist[@]}" RANK=0 "$R" selftest -o "$T/pair" --steps 5000 "${big[@]}" 2>"$T/p0.err" &
p0=$!
"${dist[@]}" RANK=1 "$R" selftest -o "$T/pair" --steps 5000 "${big[@]}" 2>"$T/p1.err" &
p1=$!
signal_after "$T/pair" $p1 USR1 5
wait $p1
c1=$?
wait $p0
c0=$?
if grep -q "needs Gloo" "$T/p0.err" "$T/p1.err"; then
  echo "this build has no Gloo: the 2-process case is skipped"
else
  usr1=$((128 + $(kill -l USR1)))
  [ $c0 -eq $usr1 ] && [ $c1 -eq $usr1 ] && ok "2 processes: both ended by SIGUSR1" ||
    fail "2 processes: statuses $c0 and $c1; $(head -c 300 "$T/p0.err") / $(head -c 300 "$T/p1.err")"
  stop=$(newest "$T/pair")
  [ -n "$stop" ] && [ "$(lines "$T/pair")" -eq "$stop" ] || fail "2 processes: checkpoint '$stop', log $(lines "$T/pair") steps"
fi
finish
