#!/usr/bin/env bash
# Micro-benchmark of the network layer (not a test): SD 2.1-base UNet at a
# 64x64 latent and VAE encoder at 512x512, random weights.
#   scripts/bench-nn.sh [build] [cpu|cuda] [fp32|bf16|fp16]
set -euo pipefail
build=${1:-build}
echo "machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(nproc) cores"
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name --format=csv,noheader || true
"$build/rass-bench-nn" "${2:-cpu}" "${3:-fp32}"
