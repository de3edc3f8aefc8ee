#!/usr/bin/env bash
# Benchmark of rass-degrade (not a test): images/s at 512x512 with the rass
# preset, model only and with PNG decode/encode, on 1 thread and on all cores;
# then the whole tool on a directory of 512x512 PNGs.
set -euo pipefail
build=${1:-build}
root=$(cd "$(dirname "$0")/.." && pwd)
n=${BENCH_N:-100}
echo "machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(nproc) cores"
"$build/rass-bench-degrade" "$root/examples/images/astronaut.png" "$n"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir "$tmp/in"
for i in $(seq -w 1 "$n"); do ln -s "$root/examples/images/astronaut.png" "$tmp/in/a$i.png"; done
for jobs in 1 "$(nproc)"; do
  start=$(date +%s.%N)
  "$build/rass-degrade" "$tmp/in" -o "$tmp/out$jobs" -j "$jobs" -q
  end=$(date +%s.%N)
  awk -v n="$n" -v s="$start" -v e="$end" -v j="$jobs" \
    'BEGIN { printf "rass-degrade tool, %d job(s): %.1f images/s (files in, PNG + JSON record out)\n", j, n / (e - s) }'
done
