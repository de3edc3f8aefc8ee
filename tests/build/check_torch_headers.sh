#!/usr/bin/env bash
# Every LibTorch header this build compiled against is the linked LibTorch's
# own: a build against a wheel's LibTorch must not pick up Debian's 1.13
# headers from /usr/include/{ATen,c10,torch} (the compiler's default include
# directory, searched after the wheel's). Reads the compiler's depfiles
# (CMakeFiles/*/*.o.d).
# Usage: check_torch_headers.sh <build-dir> <torch-include-dir>
set -euo pipefail
build=$1
inc=$(realpath -m "$2")
headers=$(find "$build" -name '*.o.d' -print0 | xargs -0 cat | tr ' \\' '\n\n' |
  grep -E '/(ATen|c10|caffe2|torch/csrc)/' | xargs -r realpath -m | sort -u)
n=$(printf '%s' "$headers" | grep -c . || true)
if [ "$n" -eq 0 ]; then
  echo "no LibTorch header in any depfile under $build: nothing to check" >&2
  exit 1
fi
bad=$(printf '%s\n' "$headers" | grep -v "^$inc/" || true)
if [ -n "$bad" ]; then
  echo "LibTorch headers from outside $inc:" >&2
  printf '%s\n' "$bad" | head -20 >&2
  exit 1
fi
echo "$n LibTorch headers, all under $inc"
