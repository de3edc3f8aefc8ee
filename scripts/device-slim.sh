#!/usr/bin/env bash
# The working tree sent to a device (GPU) machine is limited to 64 MiB,
# carried folders included, and this tree's tracked files are about 79 MiB:
# the mini model (models/mini, 49 MiB) and the test fixtures (24 MiB) are
# most of it, and a GPU run needs neither (its tools get -m; its parity test
# uses the small tiny-model fixtures kept below). This removes them from the
# working tree for the run and puts them back from git afterwards.
#
#   scripts/device-slim.sh size [PATH...]  MiB that would travel: tracked files
#                                          present, untracked files git does not
#                                          ignore, and the PATHs (what `carry` names)
#   scripts/device-slim.sh slim            remove models/mini and tests/fixtures,
#                                          except $RASS_SLIM_KEEP
#   scripts/device-slim.sh restore         put them back (git checkout)
#
# slim refuses when those folders hold uncommitted changes or untracked files,
# so restore gives back exactly what was there. Kept by default (the GPU
# parity test's fixtures and test-nn's UNet-on-CUDA case's):
# tests/fixtures/nn/sd_tiny, sd_tiny_lora.safetensors, restore_lq.png,
# ras_tiny, ras_lq.png, unet_tiny, unet_tiny_conv and their _io.safetensors.
set -euo pipefail
cd "$(dirname "$0")/.."
areas=(models/mini tests/fixtures)
keep=${RASS_SLIM_KEEP:-"tests/fixtures/nn/sd_tiny tests/fixtures/nn/sd_tiny_lora.safetensors tests/fixtures/nn/restore_lq.png tests/fixtures/nn/ras_tiny tests/fixtures/nn/ras_lq.png tests/fixtures/nn/unet_tiny tests/fixtures/nn/unet_tiny_conv tests/fixtures/nn/unet_tiny_io.safetensors tests/fixtures/nn/unet_tiny_conv_io.safetensors"}
die() { echo "device-slim.sh: $*" >&2; exit 1; }

size() {
  local p
  for p in "$@"; do [ -e "$p" ] || die "$p does not exist"; done
  {
    git ls-files -z --cached --others --exclude-standard | xargs -0 -r stat -c %s 2>/dev/null || true
    for p in "$@"; do find "$p" -type f -printf '%s\n'; done
  } | awk '{ s += $1 } END { printf "%.1f MiB\n", s / 1048576 }'
}

slim() {
  [ -z "$(git status --porcelain -- "${areas[@]}")" ] ||
    die "${areas[*]} have uncommitted changes or untracked files; commit or remove them first"
  local f k skip
  git ls-files -z -- "${areas[@]}" | while IFS= read -r -d '' f; do
    skip=0
    for k in $keep; do
      case $f in "$k" | "$k"/*) skip=1 ;; esac
    done
    [ "$skip" = 1 ] || rm -f -- "$f"
  done
  find "${areas[@]}" -depth -type d -empty -delete 2>/dev/null || true
  echo "device-slim.sh: removed ${areas[*]} but the kept fixtures; 'scripts/device-slim.sh restore' puts them back" >&2
}

restore() {
  git checkout -- "${areas[@]}"
  [ -z "$(git status --porcelain -- "${areas[@]}")" ] || die "git status still shows changes under ${areas[*]}"
  echo "device-slim.sh: ${areas[*]} restored" >&2
}

case ${1:-} in
  size) shift; size "$@" ;;
  slim) slim ;;
  restore) restore ;;
  -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//' ;;
  *) sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//' >&2; exit 2 ;;
esac
