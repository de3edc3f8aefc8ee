#!/usr/bin/env bash
# Installs the Debian packages rass needs to build and test.
# Idempotent: does nothing (and prints nothing) when everything is present.
# Usage: scripts/install-deps.sh [--with-torch] [--with-cuda] [--with-python]
#   --with-torch   also LibTorch (CPU, Debian's libtorch-dev) for the network tools
#   --with-cuda    also what scripts/fetch-libtorch.sh needs (curl, unzip) for the
#                  CUDA build; the CUDA toolkit itself is not a Debian package here
#   --with-python  also python3-numpy/scipy/pil: golden fixtures, and the PIL check of PNG outputs
set -euo pipefail

pkgs=(
  build-essential cmake pkg-config ccache
  libpng-dev libdeflate-dev libjpeg62-turbo-dev
  libopencv-core-dev libopencv-imgproc-dev
  libcli11-dev doctest-dev nlohmann-json3-dev
  libhdf5-dev hdf5-tools wordnet-base  # caption-map: HDF5 mask packs (h5dump checks them), WordNet similarity
  jq  # make demo and the mini benchmark read the tools' --json summaries
  strace  # CLI tests: a job killed at an exact point (fault injection at the Nth rename)
)
for arg in "$@"; do
  case "$arg" in
    --with-torch) pkgs+=(libtorch-dev libopenblas0-pthread libgloo-dev libcairo2-dev) ;;  # gloo: rass-train processes; cairo: rass-train plot
    --with-cuda) pkgs+=(curl unzip ca-certificates libcairo2-dev) ;;  # the CUDA build has the training layer too
    --with-python) pkgs+=(python3-numpy python3-scipy python3-pil) ;;
    *) echo "install-deps.sh: unknown option '$arg'" >&2; exit 2 ;;
  esac
done

missing=()
for p in "${pkgs[@]}"; do
  # dpkg-query prints "install ok installed" for a package that is fully present.
  if [ "$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null)" != "install ok installed" ]; then
    missing+=("$p")
  fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

sudo=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "install-deps.sh: need root or sudo to install: ${missing[*]}" >&2; exit 1; }
  sudo=sudo
fi
echo "install-deps.sh: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq >/dev/null
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
