#!/usr/bin/env bash
# Peak memory and time of rass-model convert on a real-size checkpoint (not a
# test): an SD 2.1-base folder of random fp32 weights (rass-model init, about
# 5 GB on disk) is converted to bf16 (the UNet file, 3.46 GB -> 1.73 GB) and
# merged into one 5.2 GB file. The input is mapped, so its pages count in the
# peak; what the writer adds on top is the measure (write_safetensors streams
# tensor by tensor, no whole-file buffer). Needs /usr/bin/time and ~12 GB of
# free disk in SCRATCH (default: a new folder under /tmp, removed at the end).
set -euo pipefail
build=${1:-build}
root=$(cd "$(dirname "$0")/.." && pwd)
scratch=${SCRATCH:-$(mktemp -d /tmp/rass-bench-convert.XXXXXX)}
trap 'rm -rf "$scratch"' EXIT
m="$root/$build/rass-model"
[ -x "$m" ] || { echo "no $m: build first (make build)" >&2; exit 1; }
peak() {  # label command...: peak resident memory and wall time
  local label=$1
  shift
  /usr/bin/time -f "%M %e" -o "$scratch/.t" "$@"
  read -r kb s <"$scratch/.t"
  printf '%-34s peak RSS %6.2f GiB  %6.1f s\n' "$label" "$(awk -v k="$kb" 'BEGIN { print k / 1048576 }')" "$s"
}
echo "machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(nproc) cores, $(($(grep MemTotal /proc/meminfo | tr -dc 0-9) / 1048576)) GiB"
"$m" init --preset sd21-base "$scratch/sd" -q
unet=$scratch/sd/unet/diffusion_pytorch_model.safetensors
echo "UNet file: $(stat -c %s "$unet") bytes"
peak "convert UNet fp32 -> bf16" "$m" convert "$unet" -o "$scratch/u16.safetensors" --to-dtype bf16 -q
peak "convert --merge (whole folder)" "$m" convert "$scratch/sd" --merge -o "$scratch/merged.safetensors" -q
echo "merged file: $(stat -c %s "$scratch/merged.safetensors") bytes"
