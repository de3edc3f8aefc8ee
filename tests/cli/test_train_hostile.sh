#!/usr/bin/env bash
# rass-train used as a hostile user would: two runs on one output directory,
# a run killed while it holds the directory, log_every 0, an empty -o, outputs
# inside the folders a stage reads, an export folder that is a file.
source "$(dirname "$0")/lib.sh"
R=$B/rass-train
[ -x "$R" ] || { echo "rass-train not built (no LibTorch)"; exit 77; }

# Two runs at once on one -o: the second is refused before it writes
# anything; the first's log has each step once. SIGKILL releases the lock, so
# --resume then continues.
big=(--set selftest.inputs=256 --set selftest.outputs=128 --batch 32 --checkpoint-every 5 --threads 1 -q)
"$R" selftest -o "$T/two" --steps 100000 "${big[@]}" 2>"$T/first.err" &
pid=$!
trap 'kill -9 $pid 2>/dev/null; rm -rf "$T"' EXIT
for _ in $(seq 1 600); do
  [ -s "$T/two/log.jsonl" ] && break
  sleep 0.05
done
if [ ! -s "$T/two/log.jsonl" ]; then
  fail "the first run wrote no log line ($(head -c 300 "$T/first.err"))"
else
  expect_exit 2 "a second run on a directory in use" -- timeout 60 "$R" selftest -o "$T/two" --steps 100000 "${big[@]}"
  stderr_has "$T/two" "the refusal names the directory"
  stderr_has "another rass-train run" "the refusal says why"
  stderr_has "process $pid" "the refusal names the holder"
  expect_exit 2 "a second run with --resume on a directory in use" -- timeout 60 "$R" selftest -o "$T/two" --steps 100000 --resume "${big[@]}"
fi
kill -9 $pid 2>/dev/null
wait $pid 2>/dev/null
dups=$(sed -n 's/^{"step":\([0-9]*\),.*/\1/p' "$T/two/log.jsonl" | sort | uniq -d | head -3)
[ -z "$dups" ] || fail "log.jsonl has steps logged twice: $dups"
last=$(ls "$T/two/checkpoints" 2>/dev/null | sed -n 's/^step_\([0-9]*\)\.safetensors$/\1/p' | sort -n | tail -1)
expect_exit 0 "--resume after the holder was killed (the kernel dropped its lock)" -- \
  "$R" selftest -o "$T/two" --steps $(( ${last:-0} + 7 )) --resume "${big[@]}"

# A planted lock file: a link (to an input, to any file) is not written
# through, nor a file with other names; the file it points at keeps its bytes.
echo "precious" > "$T/precious.txt"
mkdir -p "$T/lk" "$T/hl"
ln -s ../precious.txt "$T/lk/.rass-train.lock"
expect_exit 2 "a lock file that is a symbolic link" -- "$R" selftest -o "$T/lk" --steps 2 -q --threads 1
stderr_has "symbolic link" "the refusal says why"
ln "$T/precious.txt" "$T/hl/.rass-train.lock"
expect_exit 2 "a lock file with another name" -- "$R" selftest -o "$T/hl" --steps 2 -q --threads 1
[ "$(cat "$T/precious.txt")" = precious ] || fail "the linked file was written: $(head -c 40 "$T/precious.txt")"
mkdir -p "$T/dl" && ln -s "$T/created-by-lock" "$T/dl/.rass-train.lock"
expect_exit 2 "a dangling lock link" -- "$R" selftest -o "$T/dl" --steps 2 -q --threads 1
[ -e "$T/created-by-lock" ] && fail "a dangling lock link created its target"

# A checkpoint whose generator state is damaged (its bytes all 0xff): exit 3
# naming the file, not LibTorch's exception with a stack trace.
expect_exit 0 "a run that writes a checkpoint" -- "$R" selftest -o "$T/rng" --steps 4 --checkpoint-every 2 -q --threads 1
ck=$(ls "$T"/rng/checkpoints/step_*.safetensors | head -1)
hlen=$(od -An -tu8 -N8 "$ck" | tr -d ' ')
range=$(head -c $((8 + hlen)) "$ck" | tail -c "$hlen" | grep -o '"rng.cpu":{[^}]*}' | sed 's/.*"data_offsets":\[\([0-9]*\),\([0-9]*\)\].*/\1 \2/')
read -r a b <<<"$range"
if [ -n "$a" ] && [ -n "$b" ]; then
  cp "$ck" "$T/bad-rng.safetensors"
  head -c $((b - a)) /dev/zero | tr '\0' '\377' | dd of="$T/bad-rng.safetensors" bs=1 seek=$((8 + hlen + a)) conv=notrunc 2>/dev/null
  expect_exit 3 "--resume-from a damaged generator state" -- "$R" selftest -o "$T/rng2" --steps 8 -q --threads 1 \
    --resume-from "$T/bad-rng.safetensors"
  stderr_has "bad-rng.safetensors" "the checkpoint is named"
  stderr_has "rng.cpu" "the tensor is named"
  grep -q "frame #" "$T/.err" && fail "no stack trace"
  [ -e "$T/rng2" ] && fail "a run that failed before step 0 leaves no folder it made: $(ls -A "$T/rng2")"
else
  fail "no rng.cpu tensor in $ck"
fi

# Negative counts are refused, not taken as "all" or "default".
expect_exit 2 "loop.keep_checkpoints=-1" -- "$R" selftest -o "$T/neg1" --steps 2 -q --set loop.keep_checkpoints=-1
expect_exit 2 "loop.threads=-1" -- "$R" selftest -o "$T/neg2" --steps 2 -q --set loop.threads=-1
stderr_has "loop.threads" "the setting is named"

# A configuration that never ends (/dev/zero) or is far too large: refused,
# not read until the memory is gone.
expect_exit 3 "--config /dev/zero" -- timeout 30 "$R" selftest --config /dev/zero --print-config
stderr_has "/dev/zero" "the endless file is named"
head -c $((17 << 20)) /dev/zero | tr '\0' ' ' > "$T/huge.json"
echo '{}' >> "$T/huge.json"
expect_exit 3 "a 17 MB configuration" -- "$R" selftest --config "$T/huge.json" --print-config
stderr_has "huge.json" "the huge file is named"
rm -f "$T/huge.json"

# log_every 0 logs the last step only (man page), not nothing.
expect_exit 0 "loop.log_every=0" -- "$R" selftest -o "$T/log0" --steps 4 --set loop.log_every=0 --threads 1 -q
[ "$(wc -l < "$T/log0/log.jsonl")" -eq 1 ] || fail "log_every 0: $(wc -l < "$T/log0/log.jsonl") log lines, expected 1"
grep -q '^{"step":3,' "$T/log0/log.jsonl" || fail "log_every 0: the line is not step 3: $(head -c 200 "$T/log0/log.jsonl")"

# An empty -o would train and keep nothing.
expect_exit 2 "an empty -o" -- "$R" selftest -o "" --steps 2 -q
stderr_has "--out-dir: expected a path, got an empty value" "the empty -o is named"

# An export folder that is a file: refused before the first step, not after the last.
touch "$T/afile"
expect_exit 2 "loop.export_dir over a file" -- "$R" selftest -o "$T/exp" --set loop.export_dir="$T/afile" --steps 2 -q
stderr_has "$T/afile" "the export folder is named"
[ ! -e "$T/exp/checkpoints" ] || fail "a refused export folder still trained (checkpoints written)"
# An export folder named by a last "..": it names an existing folder (here
# $T itself), which the export would replace. Refused before any step.
mkdir -p "$T/sub"
expect_exit 2 "loop.export_dir ending in .." -- "$R" selftest -o "$T/exp2" --set loop.export_dir="$T/sub/.." --steps 2 -q
stderr_has "names no new folder" "the reason given"
[ ! -e "$T/exp2/checkpoints" ] || fail "a refused export folder still trained (checkpoints written)"
[ -d "$T/sub" ] || fail "the folder above the export was touched"
expect_exit 2 "-o over a file" -- "$R" selftest -o "$T/afile" --steps 2 -q
[ -f "$T/afile" ] && [ ! -s "$T/afile" ] || fail "-o over a file changed the file"

# Outputs inside a folder the stage reads (needs the ras stage; it is refused
# before the model or the data are read, so any folders do).
if "$R" --help | grep -qw ras; then
  mkdir -p "$T/data/images" "$T/data/labels" "$T/model"
  echo keep > "$T/model/marker"
  ras=(ras --set ras.model="$T/model" --set ras.images="$T/data/images" --set ras.labels="$T/data/labels" --steps 2 -q)
  expect_exit 2 "-o the image folder" -- "$R" "${ras[@]}" -o "$T/data/images"
  stderr_has "ras.images" "the input setting is named"
  expect_exit 2 "-o inside the model folder" -- "$R" "${ras[@]}" -o "$T/model/run"
  stderr_has "ras.model" "the model setting is named"
  ln -s "$T/data/labels" "$T/labels-link"
  expect_exit 2 "-o a symlink to the label folder" -- "$R" "${ras[@]}" -o "$T/labels-link"
  expect_exit 2 "loop.export_dir inside the model folder" -- "$R" "${ras[@]}" -o "$T/rasout" --set loop.export_dir="$T/model/final"
  [ "$(ls -A "$T/model")" = marker ] || fail "the model folder was written into: $(ls -A "$T/model")"
  [ -z "$(ls -A "$T/data/images")" ] || fail "the image folder was written into: $(ls -A "$T/data/images")"
else
  ok "this build has no ras stage: output-inside-input checks skipped"
fi

finish
