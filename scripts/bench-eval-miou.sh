#!/usr/bin/env bash
# Benchmark of rass-eval-miou (not a test): 500 random 512x512 label-map pairs
# (150 classes, region-shaped, PNG level 6). The library call on 1 thread and
# on all cores with the share of time in file reading, PNG decoding and
# counting; then the whole tool on the same directories.
set -euo pipefail
build=${1:-build}
n=${BENCH_N:-500}
echo "machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(nproc) cores"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$build/rass-bench-eval-miou" "$n" "$tmp/data"
for jobs in 1 "$(nproc)"; do
  "$build/rass-eval-miou" "$tmp/data/pred" "$tmp/data/gt" -n 150 -q -j "$jobs" >/dev/null  # warm the page cache
  start=$(date +%s.%N)
  "$build/rass-eval-miou" "$tmp/data/pred" "$tmp/data/gt" -n 150 -q -j "$jobs" --json >/dev/null
  end=$(date +%s.%N)
  awk -v n="$n" -v s="$start" -v e="$end" -v j="$jobs" \
    'BEGIN { printf "rass-eval-miou tool, %d job(s): %.1f pairs/s (directories in, JSON out)\n", j, n / (e - s) }'
done
