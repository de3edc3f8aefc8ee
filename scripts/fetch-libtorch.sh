#!/usr/bin/env bash
# Fetches the LibTorch of the CUDA build without pip: downloads the wheels
# pinned in scripts/torch-version.env from PyPI's file host, checks their
# sha256, and unpacks only what a C++ build needs (torch/include, torch/lib,
# torch/share/cmake; the three nvidia-* libraries the CUDA toolkit lacks)
# into a cache outside the tree, reused by later builds on the same machine:
#   ${RASS_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/rass}/libtorch-<version>-<cuda>/
#     torch/{include,lib,share/cmake}   nvidia/{cu13,cusparselt,nvshmem}/lib
# (the wheel's own layout: libtorch's RPATH $ORIGIN/../../nvidia/*/lib finds
# the nvidia libraries at run time). The wheels are deleted once unpacked.
# Prints that directory on stdout; progress goes to stderr.
# Usage: scripts/fetch-libtorch.sh
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=torch-version.env
. "$here/torch-version.env"

cache=${RASS_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/rass}
dest=$cache/libtorch-$TORCH_VERSION-$TORCH_CUDA
wheels=(TORCH_WHEEL TORCH_DEP_CUFILE TORCH_DEP_CUSPARSELT TORCH_DEP_NVSHMEM)
# The stamp records the digests it was unpacked from: a new pin unpacks anew.
want="$TORCH_VERSION+$TORCH_CUDA"
for w in "${wheels[@]}"; do
  sha_var=${w}_SHA256
  want+=" ${!sha_var}"
done
if [ -f "$dest/.complete" ] && [ "$(cat "$dest/.complete")" = "$want" ]; then
  echo "$dest"
  exit 0
fi

for tool in curl unzip sha256sum; do
  command -v "$tool" >/dev/null || { echo "fetch-libtorch.sh: needs $tool (scripts/install-deps.sh --with-cuda)" >&2; exit 1; }
done
mkdir -p "$cache"
# One fetch at a time per cache (two builds started together).
exec 9>"$cache/.libtorch.lock"
flock 9
if [ -f "$dest/.complete" ] && [ "$(cat "$dest/.complete")" = "$want" ]; then
  echo "$dest"
  exit 0
fi

tmp=$dest.partial
rm -rf "$tmp"
mkdir -p "$tmp"
start=$SECONDS
for w in "${wheels[@]}"; do
  url_var=${w}_URL sha_var=${w}_SHA256
  url=${!url_var} sha=${!sha_var}
  file=$tmp/$(basename "$url")
  echo "fetch-libtorch.sh: downloading $(basename "$url")" >&2
  curl -fsSL --retry 3 --connect-timeout 30 -o "$file" "$url"
  got=$(sha256sum "$file" | cut -d' ' -f1)
  if [ "$got" != "$sha" ]; then
    echo "fetch-libtorch.sh: sha256 mismatch for $url: expected $sha, got $got" >&2
    rm -rf "$tmp"
    exit 1
  fi
  if [ "$w" = TORCH_WHEEL ]; then
    # libtorch_python.so is the Python extension's, not needed by C++ programs.
    unzip -q "$file" 'torch/include/*' 'torch/lib/*' 'torch/share/cmake/*' -x 'torch/lib/libtorch_python.so' -d "$tmp"
  else
    unzip -q "$file" 'nvidia/*/lib/*.so*' -d "$tmp"
  fi
  rm -f "$file"
done
echo "$want" >"$tmp/.complete"
rm -rf "$dest"
mv "$tmp" "$dest"
echo "fetch-libtorch.sh: LibTorch $TORCH_VERSION+$TORCH_CUDA in $dest ($(du -sh "$dest" | cut -f1), $((SECONDS - start)) s)" >&2
echo "$dest"
