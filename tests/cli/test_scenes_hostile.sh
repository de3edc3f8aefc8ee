#!/usr/bin/env bash
# rass-scenes used as a hostile user would: a count too large for one run is
# refused at once (before it allocated gigabytes of keys), while the same
# count split by --shard still runs its share.
source "$(dirname "$0")/lib.sh"
S=$B/rass-scenes
[ -x "$S" ] || { echo "rass-scenes not built"; exit 77; }

# The old tool listed all 10^9 keys first (GBs of memory, no output for minutes).
start=$(date +%s)
expect_exit 2 "-n 10^9 in one run" -- timeout 20 "$S" -n 1000000000 --size 64 -o "$T/huge" -q
stderr_has "--shard" "the message points at --shard"
[ $(( $(date +%s) - start )) -le 5 ] || fail "the refusal took more than 5 s"
[ ! -e "$T/huge" ] || fail "a refused run created its output directory"
expect_exit 2 "-n 10^6 + 1 in one run" -- "$S" -n 1000001 --size 64 -o "$T/huge" -q

# A shard of a large set: only its keys, listed in its own manifest.
expect_exit 0 "shard 1/1000 of 3000" -- "$S" -n 3000 --shard 1/1000 --size 64 -o "$T/sh" -q --json
grep -qF '"scenes":3000' "$T/.out" || fail "--json scenes: $(cat "$T/.out")"
grep -qF '"shard_scenes":3' "$T/.out" || fail "--json shard_scenes: $(cat "$T/.out")"
[ "$(ls "$T/sh/images" | tr '\n' ' ')" = "scene_000001.png scene_001001.png scene_002001.png " ] ||
  fail "shard 1/1000 wrote $(ls "$T/sh/images" | tr '\n' ' ')"
[ "$(wc -l < "$T/sh/manifest.1-of-1000.jsonl")" -eq 3 ] || fail "the shard's manifest does not list 3 scenes"

finish
