#!/usr/bin/env bash
# Issue 14's GPU checks in one command, for a GPU machine that has PyTorch and
# the CUDA toolkit but not this project's libraries (the project's device
# machines), run in the tree's root with the folder that
# `scripts/build-gpu-host.sh pack --bin build-cuda --wheels --mask2former SRC`
# wrote here carried along (.gpu-host, 31 MB):
#
#   scripts/gpu-run.sh OUTDIR [--build] [--budget SECONDS] [--bench-args "..."]
#
# 1. the tools: .gpu-host/bin (prebuilt here), or with --build compiled
#    there by scripts/build-gpu-host.sh build (minutes of the 16 cores);
# 2. the reference's Python packages from .gpu-host/wheels into a folder of
#    their own (PYTHONPATH; nothing installed into the machine's Python);
# 3. OUTDIR/unit-*.txt: test-nn's CUDA cases (test-nn-cuda with --build, or
#    a prebuilt bin/test-nn);
#    OUTDIR/parity.txt: tests/cli/test_gpu_parity.sh (CUDA fp32/bf16/fp16,
#    batch 1 and 2, against the CPU fp32 path);
# 4. OUTDIR/bench-gpu.txt: scripts/bench-gpu.sh (about 5 minutes on an H200),
#    written row by row, given what is left of --budget (default 540 s: the
#    device tool's 600 s per command, less a margin) less 60 s for the row
#    in flight, so that a slow machine still ends with the table;
# 5. OUTDIR/machine.txt: nvidia-smi, nvcc and torch versions.
# Each step's log is in OUTDIR; a failing step does not stop the next; the
# exit status is the number of failed steps (a test that skips, 77, is not one).
# The device tool sends at most 64 MiB: scripts/device-slim.sh slim first
# (and restore after), `scripts/device-slim.sh size .gpu-host` to check.
set -uo pipefail
cd "$(dirname "$0")/.."
dir=${RASS_GPU_HOST_DIR:-.gpu-host}
out=${1:?usage: scripts/gpu-run.sh OUTDIR [--build] [--budget SECONDS] [--bench-args \"...\"]}
shift
build=0
bench_args=""
budget=540
started=$(date +%s)
while [ $# -gt 0 ]; do
  case $1 in
    --build) build=1; shift ;;
    --budget) [ $# -ge 2 ] && [ "$2" -gt 0 ] 2>/dev/null || { echo "gpu-run.sh: --budget needs a number of seconds" >&2; exit 2; }; budget=$2; shift 2 ;;
    --bench-args) [ $# -ge 2 ] || { echo "gpu-run.sh: --bench-args needs a value" >&2; exit 2; }; bench_args=$2; shift 2 ;;
    *) echo "gpu-run.sh: unknown argument '$1'" >&2; exit 2 ;;
  esac
done
# --bench-args "--only 'a|b'": split into words as a shell would, quotes
# removed (xargs), nothing evaluated; a bare split kept the quotes in the pattern.
extra=()
if [ -n "$bench_args" ]; then
  command -v xargs >/dev/null || { echo "gpu-run.sh: --bench-args needs xargs (findutils)" >&2; exit 2; }
  printf '%s' "$bench_args" | xargs -n1 printf '%s\n' >/dev/null 2>&1 ||
    { echo "gpu-run.sh: --bench-args: unbalanced quotes in '$bench_args'" >&2; exit 2; }
  mapfile -t extra < <(printf '%s' "$bench_args" | xargs -n1 printf '%s\n')
fi
mkdir -p "$out"
failed=0
step() {  # NAME LOG command...: runs it, tees its tail, counts failures
  local name=$1 logf=$2 s
  shift 2
  s=$(date +%s)
  echo "== $name" >&2
  "$@" >"$logf" 2>&1
  local rc=$?
  if [ "$rc" = 0 ]; then
    echo "== $name: ok ($(($(date +%s) - s)) s)" >&2
  elif [ "$rc" = 77 ]; then
    echo "== $name: skipped: $(grep -m1 -i skipped "$logf")" >&2
  else
    echo "== $name: FAILED (exit $rc, $(($(date +%s) - s)) s); last lines of $logf:" >&2
    tail -15 "$logf" >&2
    failed=$((failed + 1))
  fi
}

{
  date -u
  nvidia-smi || true
  command -v nvcc >/dev/null && nvcc --version | tail -2
  python3 -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda, "device", torch.cuda.get_device_name(0))' || true
  uname -a
} >"$out/machine.txt" 2>&1

if [ -d "$dir/wheels" ]; then
  step "reference packages" "$out/pip.log" python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir \
    --target /tmp/rass-site "$dir"/wheels/*.whl
  export PYTHONPATH=/tmp/rass-site${PYTHONPATH:+:$PYTHONPATH}
fi
if [ "$build" = 1 ]; then
  step "build" "$out/build.log" scripts/build-gpu-host.sh build build-gpu
  bin=build-gpu
  # test-nn's CUDA cases too (a failure here leaves the tools' steps to run).
  step "build test-nn-cuda" "$out/build-tests.log" scripts/build-gpu-host.sh build build-gpu test-nn-cuda
else
  bin=$dir/bin
  exports=$(scripts/build-gpu-host.sh env) || exit 1
  eval "$exports"
fi
[ -x "$bin/rass-restore" ] || { echo "gpu-run.sh: no tools in $bin" >&2; exit 1; }
[ -d "$dir/Mask2Former" ] && export MASK2FORMER_SRC=$PWD/$dir/Mask2Former

# The CUDA cases' binaries: nn's in test-nn-cuda of a --build or a prebuilt
# test-nn (pack --bin); train's in test-train, which only a full CUDA build
# (scripts/build-cuda.sh: the training layer needs OpenCV, HDF5 and cairo) has.
unit_case() {  # unit_case BINARY CASE: one doctest case; a name that matches no case fails
  local log rc
  log=$(env RASS_FIXTURES="$PWD/tests/fixtures" "$1" "-tc=$2" 2>&1)
  rc=$?
  printf '%s\n' "$log"
  if [ "$rc" = 0 ] && grep -qE "test cases: +0 \|" <<<"$log"; then
    echo "gpu-run.sh: $(basename "$1") has no test case named '$2'"
    return 1
  fi
  return "$rc"
}
# The doctest CUDA cases as tests/CMakeLists.txt lists them (AREA_cuda_cases),
# one process each: a case that skips ends its process. The UNet case
# reads fixtures (scripts/device-slim.sh keeps them).
cuda_cases() {
  sed -n "/set($1_cuda_cases\$/,/)\$/p" tests/CMakeLists.txt | grep -o '"cuda[a-z0-9_]*|[^"]*"' | sed 's/^"[^|]*|//; s/"$//'
}
for area in nn train; do
  testbin=$bin/test-$area
  [ -x "$testbin" ] || testbin=$bin/tests/test-$area  # a full CUDA build's folder
  [ "$area" = nn ] && [ -x "$bin/test-nn-cuda" ] && testbin=$bin/test-nn-cuda
  mapfile -t cases < <(cuda_cases "$area")
  [ "${#cases[@]}" -gt 0 ] || { echo "gpu-run.sh: no ${area}_cuda_cases in tests/CMakeLists.txt" >&2; failed=$((failed + 1)); }
  if [ ! -x "$testbin" ]; then
    echo "== unit ($area): not run: no $testbin (nn: a --build makes test-nn-cuda, pack --bin brings test-nn;" \
      "train: a full CUDA build's tests/test-train)" >&2
    continue
  fi
  for tc in "${cases[@]}"; do
    step "unit: $tc" "$out/unit-$(echo "$tc" | tr -c 'a-zA-Z0-9\n' - | cut -c1-40).txt" unit_case "$testbin" "$tc"
  done
done
step "parity (tests/cli/test_gpu_parity.sh)" "$out/parity.txt" \
  env RASS_BIN="$bin" RASS_SOURCE_DIR="$PWD" bash tests/cli/test_gpu_parity.sh
bench_budget=$((budget - ($(date +%s) - started) - 60))
[ "$bench_budget" -ge 60 ] || bench_budget=60
step "benchmark (scripts/bench-gpu.sh)" "$out/bench.log" scripts/bench-gpu.sh --bin "$bin" --out "$out/bench-gpu.txt" \
  --budget "$bench_budget" "${extra[@]}"
[ -f "$out/bench-gpu.txt" ] && cat "$out/bench-gpu.txt" >&2
exit "$failed"
