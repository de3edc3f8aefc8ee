#!/usr/bin/env bash
# Benchmark of rass-degrade (not a test): images/s at 512x512 with the rass
# preset, model only and with PNG decode/encode (with the thread CPU time of
# each stage), on 1 thread and on all cores; then the whole tool on a directory
# of 512x512 PNGs: wall images/s, CPU seconds per image (user + sys) and bytes
# per LQ PNG. Wall time on a shared machine depends on its load; CPU time less.
# BENCH_N images per run (default 100), BENCH_PNG_LEVEL (default 1).
set -euo pipefail
build=${1:-build}
root=$(cd "$(dirname "$0")/.." && pwd)
n=${BENCH_N:-100}
level=${BENCH_PNG_LEVEL:-1}
echo "machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
"$build/rass-bench-degrade" "$root/examples/images/astronaut.png" "$n" "$level"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir "$tmp/in"
for i in $(seq -w 1 "$n"); do ln -s "$root/examples/images/astronaut.png" "$tmp/in/a$i.png"; done
TIMEFORMAT='%R %U %S'
for jobs in 1 "$(nproc)"; do
  t=$( { time "$build/rass-degrade" "$tmp/in" -o "$tmp/out$jobs" -j "$jobs" -q --png-level "$level" >/dev/null; } 2>&1 )
  bytes=$(cat "$tmp/out$jobs"/*.png | wc -c)
  read -r real user sys <<<"$t"
  awk -v n="$n" -v r="$real" -v u="$user" -v s="$sys" -v j="$jobs" -v b="$bytes" \
    'BEGIN { printf "rass-degrade tool, %d job(s): %.1f images/s wall, %.1f ms CPU per image, %.0f bytes per LQ PNG (files in, PNG + JSON record out)\n", j, n / r, 1000 * (u + s) / n, b / n }'
done
