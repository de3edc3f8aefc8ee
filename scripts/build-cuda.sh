#!/usr/bin/env bash
# The CUDA build: rass against the LibTorch in the PyTorch wheel the GPU
# machines run (version: scripts/torch-version.env) with the CUDA toolkit
# installed on the machine, in its own build directory. No pip: the wheel is
# fetched by scripts/fetch-libtorch.sh into a cache outside the tree.
# Usage: scripts/build-cuda.sh [--test] [build-dir]   (default build-cuda)
#   --test   also run its tests (ctest: unit, nn, cli; CUDA-only tests skip
#            with exit 77 on a machine without a GPU)
# Environment: JOBS (default nproc), NICE (e.g. "nice -n 19"), CMAKE_FLAGS.
set -euo pipefail
cd "$(dirname "$0")/.."
run_tests=0
if [ "${1:-}" = --test ]; then run_tests=1; shift; fi
case ${1:-} in
  -h|--help) sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
  -*) echo "build-cuda.sh: unknown option '$1' (usage: scripts/build-cuda.sh [--test] [build-dir])" >&2; exit 2 ;;
esac
build=${1:-build-cuda}
jobs=${JOBS:-$(nproc)}
nice_cmd=${NICE:-}

. scripts/torch-version.env
command -v nvcc >/dev/null || [ -x /usr/local/cuda/bin/nvcc ] ||
  { echo "build-cuda.sh: the CUDA toolkit (nvcc) is not installed" >&2; exit 1; }
export PATH=$PATH:/usr/local/cuda/bin  # nvcc for CMake's CUDA language, if not on PATH

prefix=$(scripts/fetch-libtorch.sh)
torch_dir=$prefix/torch/share/cmake/Torch
if [ ! -f "$build/CMakeCache.txt" ] || ! grep -qxF "Torch_DIR:PATH=$torch_dir" "$build/CMakeCache.txt"; then
  mkdir -p "$build"
  log=$build/configure.log
  # TORCH_CUDA_ARCH_LIST: the GPUs the project runs on (only .cu sources use it).
  # shellcheck disable=SC2086
  $nice_cmd cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release -DTorch_DIR="$torch_dir" \
    -DRASS_REQUIRE_TORCH=ON -DRASS_REQUIRE_TORCH_CUDA=ON -DRASS_TORCH_VERSION="$TORCH_VERSION" -DTORCH_CUDA_ARCH_LIST="$TORCH_CUDA_ARCH_LIST" \
    ${CMAKE_FLAGS:-} >"$log" 2>&1 ||
    { cat "$log" >&2; echo "build-cuda.sh: configure failed (log: $log)" >&2; exit 1; }
  grep -E '^-- rass: LibTorch' "$log" >&2 || true
fi
$nice_cmd cmake --build "$build" -j "$jobs"
if [ "$run_tests" = 1 ]; then
  cd "$build" && ctest --output-on-failure -j "$jobs"
fi
