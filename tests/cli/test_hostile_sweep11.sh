# The checks of 2026-12-07/08 (twenty-first session), each failing on the
# binaries before its fix:
# 1. rass-train with several processes: each process found its own
#    checkpoint, so processes whose -o folders differ (node-local disks)
#    resumed at different steps and the last one waited in a collective;
#    processes whose start state differed trained on.
# 2. rass-train: a process that failed before the rendezvous (rank 0's
#    output checks) left the others waiting loop.timeout_s.
# 3. rass-train: a step that failed in rank 1 (a damaged sample) ended
#    rank 0 with Gloo's "Connection reset by peer" (exit 1) and no
#    checkpoint of the steps done.
# 4. rass-scenes --resume kept an edited caption file and put its text in
#    the manifest.
. "$(dirname "$0")/lib.sh"
R=$B/rass-train

# 4. (first: the 2-process checks may skip the rest)
"$B/rass-scenes" -n 3 -o "$T/sc" -s 0 --size 64 -q || fail "scenes: the first run"
cp "$T/sc/captions/scene_000001.txt" "$T/cap1" && echo "a photo of junk" >"$T/sc/captions/scene_000001.txt"
expect_exit 0 "scenes --resume after a caption file was edited" -- "$B/rass-scenes" -n 3 -o "$T/sc" -s 0 --size 64 -q --resume
cmp -s "$T/sc/captions/scene_000001.txt" "$T/cap1" || fail "scenes: the edited caption file is kept"
grep -q junk "$T/sc/manifest.jsonl" && fail "scenes: the edited caption went into the manifest"
for k in mixed street landscape room; do
  "$B/rass-scenes" -n 6 -o "$T/k-$k" -s 3 --size 64 --kind $k -q &&
    "$B/rass-scenes" -n 6 -o "$T/k-$k" -s 3 --size 64 --kind $k --resume --json -q >"$T/k.json" &&
    grep -qF '"written":0' "$T/k.json" || fail "scenes --kind $k: unedited scenes were made again: $(cat "$T/k.json")"
done

# two_ranks DIR0 DIR1 ARGS...: rank 0 runs in DIR0, rank 1 in DIR1 (the same
# relative -o names two folders, as node-local disks do); sets c0, c1.
two_ranks() {
  local d0=$1 d1=$2 port=$((20000 + RANDOM % 20000))
  shift 2
  (cd "$d0" && exec env RANK=0 WORLD_SIZE=2 MASTER_ADDR=127.0.0.1 MASTER_PORT=$port "$R" "$@" 2>"$T/r0.err" >"$T/r0.out") &
  local p0=$!
  (cd "$d1" && exec env RANK=1 WORLD_SIZE=2 MASTER_ADDR=127.0.0.1 MASTER_PORT=$port "$R" "$@" 2>"$T/r1.err" >"$T/r1.out")
  c1=$?
  wait $p0
  c0=$?
}

# 1a. A start 10 steps apart: both processes stop before step 0 (exit 2).
mkdir -p "$T/base"
(cd "$T/base" && "$R" selftest -o run --steps 10 --checkpoint-every 5 --threads 1 -q) || fail "the first run"
cp -r "$T/base" "$T/a"
cp -r "$T/base" "$T/b"
rm "$T/b/run/checkpoints/step_10.safetensors"
start=$(date +%s)
two_ranks "$T/a" "$T/b" selftest -o run --resume --steps 20 --threads 1 --set loop.timeout_s=60 -q
if grep -q "needs Gloo" "$T/r0.err" "$T/r1.err"; then
  echo "this build has no Gloo: the 2-process checks are skipped"
  exit 77
fi
[ "$c0" -eq 2 ] && [ "$c1" -eq 2 ] && ok "resume steps 10 and 5: both processes exit 2" ||
  fail "resume steps 10 and 5: exits $c0 and $c1; $(head -c 300 "$T/r0.err") / $(head -c 300 "$T/r1.err")"
grep -qF "resumes from (here 5)" "$T/r1.err" || fail "rank 1's message: $(head -c 300 "$T/r1.err")"
grep -qF "the same checkpoint" "$T/r0.err" || fail "rank 0's message: $(head -c 300 "$T/r0.err")"
[ $(( $(date +%s) - start )) -le 40 ] || fail "the processes took $(( $(date +%s) - start )) s to stop"
[ "$(wc -l < "$T/a/run/log.jsonl")" -eq 10 ] || fail "rank 0's log was cut or grown: $(wc -l < "$T/a/run/log.jsonl") lines"

# 1b. One step, but rank 1's checkpoint holds other weights (a float of
#     its first tensor changed): rank 0's state is everyone's, so the run
#     equals one whose processes both hold rank 0's checkpoint.
rm -rf "$T/a" "$T/b"
for d in a b c d; do cp -r "$T/base" "$T/$d"; done
python3 - "$T/b/run/checkpoints/step_10.safetensors" <<'PY' || fail "could not change the checkpoint"
import json, struct, sys
p = sys.argv[1]
b = bytearray(open(p, "rb").read())
n = struct.unpack("<Q", b[:8])[0]
h = json.loads(b[8:8 + n])
name, t = next((k, v) for k, v in sorted(h.items()) if k != "__metadata__" and v["dtype"] == "F32")
off = 8 + n + t["data_offsets"][0]
old = struct.unpack("<f", b[off:off + 4])[0]
b[off:off + 4] = struct.pack("<f", old + 0.25)
open(p, "wb").write(bytes(b))
PY
two_ranks "$T/a" "$T/b" selftest -o run --resume --steps 14 --threads 1 --set loop.timeout_s=60 -q
[ "$c0" -eq 0 ] && [ "$c1" -eq 0 ] || fail "changed rank 1 state: exits $c0 and $c1; $(head -c 300 "$T/r0.err") / $(head -c 300 "$T/r1.err")"
two_ranks "$T/c" "$T/d" selftest -o run --resume --steps 14 --threads 1 --set loop.timeout_s=60 -q
[ "$c0" -eq 0 ] && [ "$c1" -eq 0 ] || fail "same state: exits $c0 and $c1; $(head -c 300 "$T/r0.err")"
cmp -s "$T/a/run/final/selftest.safetensors" "$T/c/run/final/selftest.safetensors" &&
  ok "rank 1's changed weights were replaced by rank 0's" ||
  fail "a run whose rank 1 held other weights trained another model"

# 2. Rank 0's output folder is a file there: rank 1 stops at once, not
#    after loop.timeout_s (60 s here).
mkdir -p "$T/e" "$T/f"
: >"$T/e/out"
start=$(date +%s)
two_ranks "$T/e" "$T/f" selftest -o out --steps 3 --threads 1 --set loop.timeout_s=60 -q
[ "$c0" -eq 2 ] && [ "$c1" -eq 1 ] && ok "rank 0's refused -o: exits 2 and 1" ||
  fail "rank 0's refused -o: exits $c0 and $c1; $(head -c 300 "$T/r0.err") / $(head -c 300 "$T/r1.err")"
grep -qF "not a directory" "$T/r0.err" || fail "rank 0's message: $(head -c 300 "$T/r0.err")"
grep -qF "another process stopped" "$T/r1.err" || fail "rank 1's message: $(head -c 300 "$T/r1.err")"
[ $(( $(date +%s) - start )) -le 40 ] || fail "rank 1 took $(( $(date +%s) - start )) s to stop"
[ -e "$T/f/out" ] && fail "rank 1 made its own -o folder"

# 3. Item 3 fails in rank 1 at step 5 (selftest.bad_item): both stop with
#    its message and exit 3, rank 0 keeps steps 0..4; once "mended", the
#    --resume ends where an unbroken run does.
mkdir -p "$T/h"
two_ranks "$T/h" "$T/h" selftest -o run --steps 12 --threads 1 --set selftest.bad_item=3 --set loop.timeout_s=60 -q
[ "$c0" -eq 3 ] && [ "$c1" -eq 3 ] && ok "a damaged sample in rank 1: both exit 3" ||
  fail "a damaged sample in rank 1: exits $c0 and $c1; $(head -c 300 "$T/r0.err") / $(head -c 300 "$T/r1.err")"
grep -qF "another process failed at step 5: rank 1: selftest item 3" "$T/r0.err" || fail "rank 0's message: $(head -c 300 "$T/r0.err")"
grep -qF "steps 0..4 are kept in run/checkpoints/step_5.safetensors" "$T/r0.err" || fail "rank 0 names no checkpoint"
[ -s "$T/h/run/checkpoints/step_5.safetensors" ] || fail "no checkpoint of the steps done: $(ls "$T/h/run/checkpoints")"
two_ranks "$T/h" "$T/h" selftest -o run --steps 12 --threads 1 --resume --set loop.timeout_s=60 -q
[ "$c0" -eq 0 ] && [ "$c1" -eq 0 ] || fail "the --resume: exits $c0 and $c1; $(head -c 300 "$T/r0.err")"
mkdir -p "$T/i"
two_ranks "$T/i" "$T/i" selftest -o run --steps 12 --threads 1 --set loop.timeout_s=60 -q
cmp -s "$T/h/run/final/selftest.safetensors" "$T/i/run/final/selftest.safetensors" &&
  ok "the resumed run equals an unbroken one" || fail "the resumed run differs from an unbroken one"
finish
