# Hostile invocations found by the fourth sweep (2026-12-03): killed jobs
# and --resume, two runs writing one folder, folders that cannot be written,
# long names, two readers of stdin, tabs in keys, HDF5 packs that differ by
# their timestamps. A kill at an exact point uses strace's fault injection
# (the Nth rename(2) gets SIGKILL); those cases are skipped where strace is
# missing or cannot trace. Each case failed on the binaries before its fix.
. "$(dirname "$0")/lib.sh"
S=$B/rass-scenes
D=$B/rass-degrade
E=$B/rass-eval-miou
Q=$B/rass-eval-iqa
C=$B/rass-caption-map
A=$FIX/metrics/pair_a.png
MI=$FIX/miou

can_inject=0
if command -v strace >/dev/null && strace -f -o /dev/null -e trace=rename true 2>/dev/null; then can_inject=1; fi
# killed_at SYSCALL N -- command: the command's Nth call of SYSCALL (rename:
# a file replacing another or a folder put in place; linkat: a new file
# named) gets SIGKILL before it runs.
killed_at() {
  local call=$1 n=$2; shift 3
  # In a subshell that outlives strace, so the shell's "Killed" notice goes to /dev/null.
  (strace -f -o /dev/null -e trace="$call" -e inject="$call":signal=SIGKILL:when="$n" "$@"; true) >/dev/null 2>&1
  return 0
}
same_files() {  # same_files DIR_A DIR_B SUBDIR...: every file of A's subdirs equals B's
  local a=$1 b=$2 sub f; shift 2
  for sub in "$@"; do
    for f in "$a/$sub"/*; do cmp -s "$f" "$b/$sub/${f##*/}" || { echo "$sub/${f##*/}"; return 1; }; done
    [ "$(ls "$a/$sub" | wc -l)" = "$(ls "$b/$sub" | wc -l)" ] || { echo "$sub: file counts differ"; return 1; }
  done
}

# 1. rass-scenes: a run with other settings over a folder's scenes is
#    refused, even a whole new set (a killed new set resumed kept old scenes
#    as complete; replacing would first delete the old set). A set killed
#    midway and resumed equals one made in one go.
"$S" -n 6 --size 64 -s 8 -o "$T/s8" -q || fail "reference scenes"
"$S" -n 6 --size 64 -s 7 -o "$T/sy" -q || fail "old scenes"
cp "$T/sy/images/scene_000004.png" "$T/old4.png"
expect_exit 2 "scenes: a smaller whole new set with another seed" -- "$S" -n 3 --size 64 -s 8 -o "$T/sy" -q
stderr_has "made with other settings" "the reason given"
cmp -s "$T/sy/images/scene_000004.png" "$T/old4.png" || fail "scenes: the refused run changed the old set"
if [ $can_inject = 1 ]; then
  # scenes.json and each scene's 4 files are new names: killed inside scene 1.
  killed_at linkat 8 -- "$S" -n 6 --size 64 -s 8 -o "$T/sx" -j 1 -q
  [ -e "$T/sx/captions/scene_000005.txt" ] && fail "scenes: the run was not killed midway (the case tests nothing)"
  expect_exit 0 "scenes: --resume after a kill" -- "$S" -n 6 --size 64 -s 8 -o "$T/sx" --resume -q
  why=$(same_files "$T/s8" "$T/sx" images labels tags captions) || fail "scenes: the resumed set differs: $why"
else
  echo "skipped: scenes kill case (no strace)"
fi

# 2. rass-degrade: a record never describes another image. A run with other
#    settings killed between an image and its record left the new image
#    beside the old record, which --resume then accepted.
mkdir -p "$T/hq"
cp "$T/s8/images/scene_000000.png" "$T/s8/images/scene_000001.png" "$T/hq/"
"$D" "$T/hq" -o "$T/d5" -s 5 -j 1 -q || fail "degrade seed 5"
cp -r "$T/d5" "$T/dx"
if [ $can_inject = 1 ]; then
  # An image that replaces one takes two linkat calls (its own name: taken;
  # a temporary, then renamed), a new record one: the 6th is record 1's.
  killed_at linkat 6 -- "$D" "$T/hq" -o "$T/dx" -s 6 -j 1 -q
  cmp -s "$T/dx/scene_000001.png" "$T/d5/scene_000001.png" && fail "degrade: the kill came before image 1 (the case tests nothing)"
  expect_exit 0 "degrade: --resume after a killed run of another seed" -- "$D" "$T/hq" -o "$T/dx" -s 5 -j 1 --resume -q
  cmp -s "$T/dx/scene_000001.png" "$T/d5/scene_000001.png" || fail "degrade: an image of seed 6 kept under a seed-5 record"
else
  echo "skipped: degrade kill case (no strace)"
fi

# 2b. A model folder's writer killed midway by SIGKILL (SIGTERM removes the
#     folder itself: test_signals.sh) leaves its temporary folder; the next
#     writer of that folder removes it (its mark's lock is free).
if [ $can_inject = 1 ]; then
  mkdir -p "$T/sd"
  cp -r "$FIX/nn/unet_tiny" "$T/sd/unet"
  cp -r "$FIX/nn/vae_tiny" "$T/sd/vae"
  PEFT=$FIX/nn/lora_peft/adapter_model.safetensors
  # The folder's one rename puts it in place: killed before it.
  killed_at rename 1 -- "$B/rass-merge-lora" merge --model "$T/sd" --lora "$PEFT" -O "$T/merged"
  ls -d "$T"/merged.tmp.* >/dev/null 2>&1 || fail "merge-lora: the kill left no temporary folder (the case tests nothing)"
  expect_exit 0 "merge-lora: the next run" -- "$B/rass-merge-lora" merge --model "$T/sd" --lora "$PEFT" -O "$T/merged"
  if ls -d "$T"/merged.tmp.* >/dev/null 2>&1; then fail "merge-lora: the killed run's temporary folder stays"; fi
  [ -e "$T/merged/.rass-writer" ] && fail "merge-lora: the writer's mark reached the finished folder"
else
  echo "skipped: merge-lora kill case (no strace)"
fi

# 3. Two runs writing one output folder: the second is refused (exit 2)
#    before any work. A run holding the lock is stood in for by flock(1);
#    shards of one set run side by side, the same shard twice does not.
# hold MODE FILE: flock(1) holds the lock itself (-o: not its sleep), until release.
hold() {
  flock -o "$1" "$2" sleep 60 &
  holder=$!
  for i in $(seq 100); do flock -n -x "$2" true 2>/dev/null || return 0; sleep 0.1; done
  fail "flock(1) did not take $2"
}
release() { pkill -P "$holder" sleep 2>/dev/null; kill "$holder" 2>/dev/null; wait "$holder" 2>/dev/null; }
mkdir -p "$T/busy"
hold -x "$T/busy/.rass-lock"
expect_exit 2 "scenes: a folder another run writes" -- "$S" -n 2 --size 64 -o "$T/busy" -q
stderr_has "another run is writing this output folder" "the reason given"
[ -e "$T/busy/images/scene_000000.png" ] && fail "scenes: the refused run wrote a scene"
expect_exit 2 "degrade: a folder another run writes" -- "$D" "$T/hq" -o "$T/busy" -q
expect_exit 2 "degrade: a shard of a folder a whole run writes" -- "$D" "$T/hq" -o "$T/busy" --shard 0/2 -q
release
# A run of shard 0/2: the folder's lock shared, its shard's exclusively.
hold -s "$T/busy/.rass-lock"
holder_folder=$holder
hold -x "$T/busy/.rass-lock.0-of-2"
expect_exit 2 "degrade: the same shard twice" -- "$D" "$T/hq" -o "$T/busy" --shard 0/2 -q
stderr_has "shard 0/2" "the shard named"
expect_exit 0 "degrade: another shard beside it" -- "$D" "$T/hq" -o "$T/busy" --shard 1/2 -q
expect_exit 2 "degrade: a whole run beside a shard" -- "$D" "$T/hq" -o "$T/busy" -q
release
holder=$holder_folder
release
expect_exit 0 "degrade: the folder free again" -- "$D" "$T/hq" -o "$T/busy" -q
[ -s "$T/busy/manifest.jsonl" ] || fail "degrade: no manifest after the lock was free"
# Shards of two counts at once split the items differently and overlap: a
# real shard 0/2 is held inside its run (strace delays its first output
# link by 30 s) while a shard 0/3 starts. Before, both ran.
if [ $can_inject = 1 ] && [ -r /proc/locks ]; then
  (strace -f -o /dev/null -e trace=linkat -e inject=linkat:delay_enter=30000000:when=1 \
    "$D" "$T/hq" -o "$T/mixed" --shard 0/2 -q; true) >/dev/null 2>&1 &
  slow=$!
  held=0
  for i in $(seq 300); do
    ino=$(stat -c %i "$T/mixed/.rass-lock.counts" 2>/dev/null) &&
      grep -q "OFDLCK.*:$ino " /proc/locks && { held=1; break; }
    sleep 0.1
  done
  if [ $held = 1 ]; then
    expect_exit 2 "degrade: a shard of another count beside a running one" -- "$D" "$T/hq" -o "$T/mixed" --shard 0/3 -q
    stderr_has "shards of another count (--shard I/2)" "the count in use named"
    expect_exit 0 "degrade: a shard of the same count beside it" -- "$D" "$T/hq" -o "$T/mixed" --shard 1/2 -q
  else
    fail "the delayed shard 0/2 never held its count lock"
  fi
  pkill -9 -f "rass-degrade $T/hq -o $T/mixed --shard 0/2" 2>/dev/null  # SIGKILL: acts at once on a traced process
  wait $slow 2>/dev/null
else
  echo "skipped: shards of two counts (no strace or /proc/locks)"
fi

# 4. An output file's missing folder is made (the work was done, then the
#    write failed); a folder that cannot be written in is refused before any
#    work (a read-only mount: root only, else skipped).
expect_exit 0 "eval-miou: --csv into a missing folder" -- "$E" -n 3 --match-stem "$MI/pred" "$MI/gt" --csv "$T/new/deeper/x.csv" -q
[ -s "$T/new/deeper/x.csv" ] || fail "eval-miou: the CSV was not written"
expect_exit 0 "degrade: --record into a missing folder" -- "$D" "$A" -o "$T/one.png" --record "$T/recs/one.json" -q
[ -s "$T/one.png" ] && [ -s "$T/recs/one.json" ] || fail "degrade: image and record not both written"
# "missing/../x.csv" would make an empty missing/ (mkdir -p does): refused
# before the work, with nothing made; through folders that exist it works.
expect_exit 2 "eval-miou: --csv climbing out of a missing folder" -- "$E" -n 3 --match-stem "$MI/pred" "$MI/gt" --csv "$T/gone/../x.csv" -q
stderr_has "climbs out of" "the reason given"
[ ! -e "$T/gone" ] && [ ! -e "$T/x.csv" ] || fail "eval-miou: a folder or report was made for missing/../x.csv"
expect_exit 2 "degrade: -o climbing out of a missing folder" -- "$D" "$A" -o "$T/gone/../two.png" -q
[ ! -e "$T/gone" ] && [ ! -e "$T/two.png" ] || fail "degrade: a folder or image was made for missing/../two.png"
expect_exit 0 "degrade: -o with .. through folders that exist" -- "$D" "$A" -o "$T/recs/../two.png" -q
[ -s "$T/two.png" ] || fail "degrade: recs/../two.png not written"
mkdir -p "$T/ro"
if mount -t tmpfs -o ro,size=1m tmpfs "$T/ro" 2>/dev/null; then
  expect_exit 2 "degrade: an output folder on a read-only mount" -- "$D" "$T/hq" -o "$T/ro/out" -q
  stderr_has "cannot write in" "the reason given"
  expect_exit 2 "eval-miou: a report on a read-only mount" -- "$E" -n 3 --match-stem "$MI/pred" "$MI/gt" --csv "$T/ro/x.csv" -q
  umount "$T/ro"
else
  echo "skipped: read-only folder cases (cannot mount a tmpfs here)"
fi

# 5. A name near the 255-byte limit still gets its temporary.
mkdir -p "$T/long"
long=$(printf 'a%.0s' $(seq 250))
cp "$A" "$T/long/$long.png"
expect_exit 0 "degrade: a 254-byte output name" -- "$D" "$T/long" -o "$T/long_out" -q
[ -s "$T/long_out/$long.png" ] && [ -s "$T/long_out/$long.json" ] || fail "degrade: the long-named outputs are missing"
if ls -A "$T/long_out" | grep -q '\.tmp\.'; then fail "degrade: a temporary left behind"; fi

# 6. Two readers of stdin: exit 2 before any work (the second found stdin
#    consumed and failed with a misleading message).
expect_exit 2 "degrade: input - and --replay -" -- "$D" - --replay - -o "$T/r.png" <"$A"
stderr_has "can read stdin" "the conflict named"
expect_exit 2 "eval-miou: input - and --label-map -" -- "$E" -n 3 --label-map - - "$MI/gt/a.png" <"$MI/pred/a.png"
stderr_has "can read stdin" "the conflict named"
expect_exit 2 "eval-iqa: --niqe-params - and input -" -- "$Q" -m niqe --niqe-params - - <"$A"
expect_exit 2 "eval-iqa: --niqe-params - and --manifest -" -- "$Q" -m niqe --niqe-params - --manifest - <"$A"

# 7. A tab in an item's key: a bad item named (keys go into tab-separated
#    listings: caption-map's key<TAB>tags lines broke rass-restore --tags).
mkdir -p "$T/tab"
cp "$A" "$T/tab/a	b.png"
cp "$A" "$T/tab/c.png"
expect_exit 3 "degrade: a tab in a key" -- "$D" "$T/tab" -o "$T/tab_out" -q
stderr_has "tab character" "the reason given"
[ -s "$T/tab_out/c.png" ] || fail "degrade: the good item was not made"

# 8. HDF5 packs: the same input gives the same bytes (no object times).
printf 'wall\nsky\n' >"$T/classes.txt"
printf 'P5\n2 1\n255\n\000\001' >"$T/lm.pgm"
printf "# no tags\n" >"$T/table.tsv"
"$C" --classes "$T/classes.txt" --table "$T/table.tsv" "$T/lm.pgm" --tokenizer "$FIX/text/tiny-clip" -o "$T/p1.h5" >/dev/null 2>&1 || fail "pack 1"
sleep 1.1
"$C" --classes "$T/classes.txt" --table "$T/table.tsv" "$T/lm.pgm" --tokenizer "$FIX/text/tiny-clip" -o "$T/p2.h5" >/dev/null 2>&1 || fail "pack 2"
cmp -s "$T/p1.h5" "$T/p2.h5" || fail "caption-map: two packs of the same input differ"
finish
