#!/usr/bin/env bash
# rass-train end to end with its selftest stage: --print-config, config files
# and --set refused naming file and key, a short run's outputs, a used output
# directory, --resume of another configuration, a run killed with SIGKILL
# resumed to the uninterrupted run's weights byte for byte, processes started
# with different configurations, plot.
source "$(dirname "$0")/lib.sh"
R=$B/rass-train
[ -x "$R" ] || { echo "rass-train not built (no LibTorch)"; exit 77; }

expect_exit 0 "--help lists the stages and plot" -- "$R" --help
grep -q selftest "$T/.out" || fail "--help lacks selftest"
grep -q plot "$T/.out" || fail "--help lacks plot"

# --print-config: every default, and it reads back unchanged.
expect_exit 0 "--print-config" -- "$R" selftest --print-config
cp "$T/.out" "$T/run.json"
for key in '"stage": "selftest"' '"lr": 0.05' '"beta2": 0.999' '"schedule": "constant"' '"inputs": 16' '"bucket_mb": 25'; do
  grep -qF "$key" "$T/run.json" || fail "--print-config lacks $key"
done
expect_exit 0 "--config of a printed config" -- "$R" selftest --config "$T/run.json" --print-config
cmp -s "$T/.out" "$T/run.json" || fail "--config of --print-config's output changed it"
expect_exit 0 "flags over --set over --config" -- "$R" selftest --config "$T/run.json" --set loop.lr=0.5 --set loop.steps=3 --steps 7 --print-config
grep -qF '"lr": 0.5' "$T/.out" || fail "--set loop.lr did not apply"
grep -qF '"steps": 7' "$T/.out" || fail "--steps did not win over --set"

# Bad configuration: exit 3 naming the file and key (a file), exit 2 (a flag).
echo '{"loop": {"lr": 0.1,' > "$T/broken.json"
expect_exit 3 "a config file that is not JSON" -- "$R" selftest --config "$T/broken.json"
stderr_has "broken.json" "not JSON names the file"
echo '{"loop": {"learning_rate": 0.1}}' > "$T/unknown.json"
expect_exit 3 "an unknown key in the file" -- "$R" selftest --config "$T/unknown.json"
stderr_has "unknown.json" "unknown key names the file"
stderr_has "loop.learning_rate" "unknown key names the key"
echo '{"selftest": {"inputs": "many"}}' > "$T/type.json"
expect_exit 3 "a wrong type in the file" -- "$R" selftest --config "$T/type.json"
stderr_has "selftest.inputs" "wrong type names the key"
expect_exit 3 "a missing config file" -- "$R" selftest --config "$T/none.json"
expect_exit 2 "--set of an unknown key" -- "$R" selftest --set loop.nope=1
stderr_has "loop.nope" "--set names the key"
expect_exit 2 "--set without =" -- "$R" selftest --set loop.lr
expect_exit 2 "a batch the processes cannot split" -- env RANK=0 WORLD_SIZE=3 "$R" selftest --batch 8 -o "$T/x" -q
expect_exit 2 "--resume with --resume-from" -- "$R" selftest --resume --resume-from x.safetensors

# A short run.
expect_exit 0 "a short run" -- "$R" selftest -o "$T/run" --steps 20 --checkpoint-every 5 --json -q
grep -qF '"steps_done":20' "$T/.out" || fail "--json summary: $(cat "$T/.out")"
[ "$(wc -l < "$T/run/log.jsonl")" -eq 20 ] || fail "log.jsonl has $(wc -l < "$T/run/log.jsonl") lines, expected 20"
for k in '"step":19' '"loss"' '"mse"' '"lr"' '"grad_norm"' '"images_per_s"' '"time"' '"peak_memory_mb"'; do
  tail -1 "$T/run/log.jsonl" | grep -qF "$k" || fail "log line lacks $k"
done
ls "$T/run/checkpoints" | grep -qx step_20.safetensors || fail "no step_20 checkpoint"
[ "$(ls "$T/run/checkpoints" | wc -l)" -eq 2 ] || fail "keep_checkpoints 2: $(ls "$T/run/checkpoints")"
[ -s "$T/run/final/selftest.safetensors" ] || fail "no exported model"
# fp16 loss scaling (loop.amp_dtype fp16): on the CPU the scaling runs alone,
# exact in float32 (powers of two): the same weights as the plain run.
expect_exit 0 "fp16 loss scaling" -- "$R" selftest -o "$T/fp16" --steps 20 --set loop.amp=true \
  --set loop.amp_dtype=fp16 --set loop.loss_scale=1024 --set loop.loss_scale_growth_interval=8 --json
stderr_has "loss scaling still runs" "the CPU note names the scaling"
grep -qF '"skipped_steps":0,"loss_scale":4096' "$T/.out" || fail "--json lacks the scaling's summary: $(cat "$T/.out")"
tail -1 "$T/fp16/log.jsonl" | grep -qF '"loss_scale":4096' || fail "the scale did not grow twice: $(tail -1 "$T/fp16/log.jsonl")"
grep -qF '"skipped":true' "$T/fp16/log.jsonl" && fail "a step was skipped"
cmp -s "$T/fp16/final/selftest.safetensors" "$T/run/final/selftest.safetensors" ||
  fail "fp16 loss scaling changed the weights of a run without overflow"
expect_exit 2 "gradient checkpointing for a stage without a UNet" -- "$R" selftest -o "$T/gc" --steps 2 -q \
  --set loop.gradient_checkpointing=true
stderr_has "no diffusers UNet" "the refusal says why"
expect_exit 2 "loop.amp_dtype fp16 without loop.amp" -- "$R" selftest -o "$T/fp16b" --steps 2 --set loop.amp_dtype=fp16 -q
stderr_has "loop.amp=true" "the refusal says what to set"
expect_exit 3 "a --resume that turns the scaling on" -- "$R" selftest -o "$T/run" --steps 30 --resume -q \
  --set loop.amp=true --set loop.amp_dtype=fp16
stderr_has "loop.amp_dtype" "the differing key is named"
expect_exit 2 "a used output directory without --resume" -- "$R" selftest -o "$T/run" --steps 20 -q
stderr_has "--resume" "the message points at --resume"
expect_exit 3 "--resume with another learning rate" -- "$R" selftest -o "$T/run" --steps 30 --lr 0.02 --resume -q
stderr_has "loop.lr" "the differing key is named"
expect_exit 0 "--resume with more steps" -- "$R" selftest -o "$T/run" --steps 30 --resume --json -q
grep -qF '"start_step":20' "$T/.out" || fail "resume did not start at 20: $(cat "$T/.out")"
# A run folder copied or moved elsewhere (scratch to project space) still
# owns its export OUT/final: the mark names the run relative to it too.
cp -a "$T/run" "$T/moved"
expect_exit 0 "--resume of a copied run folder" -- "$R" selftest -o "$T/moved" --steps 35 --resume --json -q
grep -qF '"start_step":30' "$T/.out" || fail "the copied run did not resume at 30: $(cat "$T/.out")"
expect_exit 2 "its export is still not another run's to replace" -- "$R" selftest -o "$T/other" --steps 1 -q \
  --set loop.export_dir="$T/moved/final"
stderr_has "another run" "the other run is named"
# An export moved on its own into another folder stays the first run's: a
# new run there may not replace it (the run's id, not just where it sits).
mkdir -p "$T/proj"
cp -a "$T/moved/final" "$T/proj/final"
expect_exit 2 "a new run over an export moved into its folder" -- "$R" selftest -o "$T/proj" --steps 1 -q
stderr_has "another run" "the other run is named"

# SIGKILL between checkpoints, then --resume: the uninterrupted run's weights, byte for byte.
big=(--set selftest.inputs=512 --set selftest.outputs=256 --batch 32 --checkpoint-every 5 --threads 1 -q)
"$R" selftest -o "$T/killed" --steps 5000 "${big[@]}" 2>"$T/killed.err" &
pid=$!
newest() { ls "$T/killed/checkpoints" 2>/dev/null | sed -n 's/^step_\([0-9]*\)\.safetensors$/\1/p' | sort -n | tail -1; }
for _ in $(seq 1 600); do
  last=$(newest)
  [ -n "$last" ] && [ "$last" -ge 15 ] && break
  sleep 0.05
done
kill -9 $pid 2>/dev/null
wait $pid 2>/dev/null
last=$(newest)
if [ -z "$last" ] || [ "$last" -ge 5000 ]; then
  fail "the run to kill left no checkpoint or finished (last: '$last'; $(head -c 300 "$T/killed.err"))"
else
  ok "killed with SIGKILL after step $last's checkpoint"
  steps=$((last + 60))  # both runs end at the same step, some way past the kill
  expect_exit 0 "resume of the killed run" -- "$R" selftest -o "$T/killed" --steps $steps --resume "${big[@]}"
  expect_exit 0 "the uninterrupted run" -- "$R" selftest -o "$T/whole" --steps $steps "${big[@]}"
  cmp -s "$T/killed/final/selftest.safetensors" "$T/whole/final/selftest.safetensors" &&
    ok "resumed weights equal the uninterrupted run's byte for byte" ||
    fail "resumed weights differ from the uninterrupted run's"
  n=$(grep -c . "$T/killed/log.jsonl")
  [ "$n" -eq $steps ] || fail "the resumed log has $n lines, expected $steps (one per step)"
fi

# Processes started with different configurations stop before step 0.
port=$((20000 + RANDOM % 20000))
RANK=0 WORLD_SIZE=2 MASTER_ADDR=127.0.0.1 MASTER_PORT=$port "$R" selftest -o "$T/mix" --threads 1 -q 2>"$T/r0.err" &
p0=$!
RANK=1 WORLD_SIZE=2 MASTER_ADDR=127.0.0.1 MASTER_PORT=$port "$R" selftest -o "$T/mix" --threads 1 --lr 0.5 -q 2>"$T/r1.err"
c1=$?
wait $p0
c0=$?
if grep -q "needs Gloo" "$T/r0.err"; then
  echo "this build has no Gloo: the 2-process check is skipped"
else
  [ "$c0" -eq 2 ] && [ "$c1" -eq 2 ] && ok "different configurations: both processes exit 2" ||
    fail "different configurations: exits $c0 and $c1; $(head -c 300 "$T/r0.err")"
  grep -q "differs from rank 0" "$T/r1.err" || fail "rank 1's message: $(head -c 300 "$T/r1.err")"
fi

# A process whose peers never come: a clear error after loop.timeout_s, not a hang.
port=$((20000 + RANDOM % 20000))
start=$(date +%s)
expect_exit 1 "a process alone at the rendezvous" -- env RANK=0 WORLD_SIZE=2 MASTER_ADDR=127.0.0.1 MASTER_PORT=$port \
  "$R" selftest -o "$T/alone" --set loop.timeout_s=2 -q
[ $(( $(date +%s) - start )) -le 30 ] || fail "the lone process waited $(( $(date +%s) - start )) s"
grep -qi "failed" "$T/.err" && ! grep -q "frame #" "$T/.err" || fail "lone process message: $(head -c 300 "$T/.err")"

# plot (lib/rass/train/plot.cpp).
"$R" plot "$T/run/log.jsonl" -o "$T/curves.png" 2>"$T/plot.err"
rc=$?
if [ $rc -eq 0 ] && head -c 8 "$T/curves.png" | od -An -c | grep -q 'P   N   G'; then
  ok "plot writes a PNG"
else
  fail "plot: exit $rc, $(head -c 300 "$T/plot.err")"
fi
expect_exit 2 "plot without -o" -- "$R" plot "$T/run/log.jsonl"
expect_exit 2 "plot --terms ''" -- "$R" plot "$T/run/log.jsonl" --terms '' -o "$T/empty-terms.png"
stderr_has "--terms is empty"
expect_exit 2 "plot - -" -- "$R" plot - - -o "$T/twice.png" </dev/null
stderr_has "given more than once" "stdin holds one log"
# A descriptor has no extension: PNG, as -o - (it was refused).
"$R" plot "$T/run/log.jsonl" -q -o /dev/fd/3 3>"$T/fd.png" && head -c 8 "$T/fd.png" | od -An -c | grep -q 'P   N   G' &&
  ok "plot -o /dev/fd/3 writes a PNG" || fail "plot -o /dev/fd/3"
finish
