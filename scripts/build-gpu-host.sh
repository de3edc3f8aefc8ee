#!/usr/bin/env bash
# The network tools on a GPU machine that has PyTorch (whose LibTorch they
# link), the CUDA toolkit and CMake, but not this project's Debian libraries
# and no package registry (the project's device machines: PyTorch 2.11 with
# CUDA 13.0, the versions scripts/torch-version.env pins for the CUDA build).
#
# Which system libraries: the GPU-host build (CMake -DRASS_GPU_HOST=ON) makes
# only the tools that need no OpenCV, HDF5, cairo or doctest: rass-restore,
# rass-segment, rass-sam, rass-samsr, rass-dreamclear, rass-t5, rass-model, rass-merge-lora, rass-eval-miou, rass-scenes and
# the rass dispatcher. Those need libpng, libjpeg(-turbo), zlib and libdeflate
# (four shared libraries, about 1.1 MB) and the headers of those and of CLI11
# and nlohmann/json. `pack` copies them from this (Debian) machine into one
# folder that travels with the tree (the device tool's `carry`); the GPU
# machine then needs nothing else. Not built there: rass-degrade and
# rass-eval-iqa (OpenCV), rass-caption-map (HDF5), rass-train (OpenCV, HDF5,
# cairo) and the doctest binaries, but for test-nn-cuda (test-nn's CUDA
# cases alone, on request: `build BUILD test-nn-cuda`; doctest's header is
# carried too).
#
# Usage:
#   scripts/build-gpu-host.sh pack [--bin BUILD] [--wheels] [--mask2former SRC]
#       here, after scripts/install-deps.sh: writes $RASS_GPU_HOST_DIR
#       (default .gpu-host, ignored by git) with deps/include and deps/lib;
#       --bin BUILD also brings BUILD's network tools up to date and copies
#       them (a CUDA build of this tree against the same LibTorch, e.g.
#       build-cuda from scripts/build-cuda.sh) into bin/, with the doctest
#       binary test-nn (its CUDA cases), to run them there without compiling
#       (see `env`); --wheels downloads from PyPI the
#       Python packages scripts/bench-gpu.sh's PyTorch reference needs and the
#       GPU machines lack (diffusers, importlib_metadata; fvcore, iopath, yacs, termcolor for
#       Mask2Former's head) into wheels/ (scripts/gpu-run.sh installs them);
#       --mask2former SRC copies a checkout of facebookresearch/Mask2Former
#       (its code, not committed here) into Mask2Former/.
#   scripts/build-gpu-host.sh build [BUILD [TARGET]]   on the GPU machine:
#       configures and builds BUILD (default build-gpu) against python3's
#       torch and the carried deps/ (Release, ninja when present,
#       TORCH_CUDA_ARCH_LIST from scripts/torch-version.env); with TARGET
#       only that one (test-nn-cuda: test-nn's CUDA cases).
#   scripts/build-gpu-host.sh env   on the GPU machine: prints the export of
#       LD_LIBRARY_PATH that lets bin/'s prebuilt tools find python3's LibTorch,
#       the CUDA runtime and deps/lib (eval "$(scripts/build-gpu-host.sh env)").
# Environment: RASS_GPU_HOST_DIR, PYTHON (default python3), JOBS (default nproc).
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${RASS_GPU_HOST_DIR:-.gpu-host}
python=${PYTHON:-python3}
die() { echo "build-gpu-host.sh: $*" >&2; exit 1; }
usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'; }

# The tools the GPU-host build makes (CMakeLists.txt, RASS_GPU_HOST).
tools="rass rass-restore rass-segment rass-sam rass-samsr rass-dreamclear rass-t5 rass-model rass-merge-lora rass-eval-miou rass-scenes"

pack() {
  local bin="" wheels=0 m2f=""
  while [ $# -gt 0 ]; do
    case $1 in
      --bin) [ $# -ge 2 ] || die "--bin needs a build folder"; bin=$2; shift 2 ;;
      --wheels) wheels=1; shift ;;
      --mask2former) [ $# -ge 2 ] || die "--mask2former needs a folder"; m2f=$2; shift 2 ;;
      *) die "pack: unknown argument '$1'" ;;
    esac
  done
  local arch
  arch=$(gcc -print-multiarch 2>/dev/null || echo x86_64-linux-gnu)
  local tmp=$dir.tmp.$$
  rm -rf "$tmp"
  mkdir -p "$tmp/deps/include" "$tmp/deps/lib"
  trap 'rm -rf "$tmp"' EXIT
  # Headers: the four codecs' public headers, CLI11 and nlohmann/json.
  local h
  for h in png.h pngconf.h pnglibconf.h jpeglib.h jmorecfg.h jerror.h zlib.h zconf.h libdeflate.h; do
    [ -f "/usr/include/$h" ] || die "/usr/include/$h missing: run scripts/install-deps.sh first"
    cp "/usr/include/$h" "$tmp/deps/include/"
  done
  [ -f "/usr/include/$arch/jconfig.h" ] || die "/usr/include/$arch/jconfig.h missing (libjpeg62-turbo-dev)"
  cp "/usr/include/$arch/jconfig.h" "$tmp/deps/include/"
  # doctest (one header): test-nn-cuda, test-nn's CUDA cases built there.
  for h in CLI nlohmann doctest; do
    [ -d "/usr/include/$h" ] || die "/usr/include/$h missing: run scripts/install-deps.sh first"
    cp -r "/usr/include/$h" "$tmp/deps/include/"
  done
  # Libraries: each under its soname, with the unversioned link names the
  # linker and CMake's find modules look for.
  local soname links real l
  for entry in "libpng16.so.16 libpng16.so libpng.so" "libjpeg.so.62 libjpeg.so" "libz.so.1 libz.so" \
               "libdeflate.so.0 libdeflate.so"; do
    read -r soname links <<<"$entry"
    real=""
    for d in "/usr/lib/$arch" "/lib/$arch" /usr/lib /lib; do
      if [ -e "$d/$soname" ]; then real=$(readlink -f "$d/$soname"); break; fi
    done
    [ -n "$real" ] || die "$soname not found: run scripts/install-deps.sh first"
    cp "$real" "$tmp/deps/lib/$soname"
    for l in $links; do ln -s "$soname" "$tmp/deps/lib/$l"; done
  done
  if [ -n "$bin" ]; then
    [ -f "$bin/CMakeCache.txt" ] || die "--bin $bin: not a CMake build folder"
    readelf -d "$bin/rass-restore" 2>/dev/null | grep -q 'libtorch_cuda\.so' ||
      die "--bin $bin: rass-restore there is not a CUDA build (scripts/build-cuda.sh makes one)"
    local t
    # Up to date with the tree first (nothing to do when it is).
    # test-nn too: its CUDA cases (the deformable-attention kernel against
    # the LibTorch ops, CUDA graphs, copies and streams, the UNet on CUDA)
    # need the GPU; it links what the tools link.
    cmake --build "$bin" -j "${JOBS:-$(nproc)}" --target $tools test-nn >&2 || die "--bin $bin: building the tools failed"
    mkdir -p "$tmp/bin"
    for t in $tools; do
      [ -x "$bin/$t" ] || die "--bin $bin: $t not built"
      cp "$bin/$t" "$tmp/bin/"
    done
    [ -x "$bin/tests/test-nn" ] || die "--bin $bin: tests/test-nn not built"
    strip -o "$tmp/bin/test-nn" "$bin/tests/test-nn"
    { echo "commit $(git rev-parse HEAD)$(git diff --quiet HEAD -- lib cmd CMakeLists.txt || echo ' (with uncommitted changes)')"
      grep -E '^(Torch_DIR|CMAKE_BUILD_TYPE|TORCH_CUDA_ARCH_LIST)' "$bin/CMakeCache.txt" || true
    } >"$tmp/bin/BUILD_INFO"
  fi
  if [ "$wheels" = 1 ]; then
    # The GPU machines run Python 3.12 with torch, transformers, numpy, PIL,
    # safetensors, huggingface_hub, pyyaml, tabulate, portalocker and tqdm
    # (the device library's package list); these are what is missing. All
    # pure Python: fvcore and iopath are source packages on PyPI, built into wheels here.
    mkdir -p "$tmp/wheels"
    python3 -m pip download -q --no-deps --only-binary=:all: -d "$tmp/wheels" diffusers==0.42.1 importlib_metadata==8.7.1 yacs==0.1.8 termcolor==3.3.0 ||
      die "--wheels: pip download failed"
    python3 -m pip wheel -q --no-deps -w "$tmp/wheels" fvcore==0.1.5.post20221221 iopath==0.1.10 ||
      die "--wheels: building the wheels of fvcore and iopath failed"
  fi
  if [ -n "$m2f" ]; then
    [ -f "$m2f/mask2former/modeling/pixel_decoder/msdeformattn.py" ] || die "--mask2former $m2f: not a Mask2Former checkout"
    mkdir -p "$tmp/Mask2Former"
    cp -r "$m2f/mask2former" "$m2f/LICENSE" "$tmp/Mask2Former/"
  fi
  rm -rf "$dir"
  mv "$tmp" "$dir"
  trap - EXIT
  echo "build-gpu-host.sh: wrote $dir ($(du -sh "$dir" | cut -f1)); carry it to the GPU machine" >&2
}

torch_prefix() {
  "$python" -c 'import torch, os; print(os.path.dirname(torch.__file__))' 2>/dev/null ||
    die "$python cannot import torch (PYTHON names another interpreter)"
}

# Library folders of the pip CUDA packages next to torch (nvidia/*/lib), and
# the toolkit's, for the prebuilt tools' own libcudart.so.13.
cuda_lib_dirs() {
  local tp=$1 d
  for d in "$tp"/../nvidia/*/lib /usr/local/cuda/lib64 /usr/local/cuda/targets/x86_64-linux/lib; do
    [ -d "$d" ] && printf ':%s' "$(cd "$d" && pwd)"
  done
  return 0
}

build() {
  local build=${1:-build-gpu}
  [ -d "$dir/deps/include" ] || die "$dir/deps missing: run 'scripts/build-gpu-host.sh pack' on the Debian machine and carry $dir"
  . scripts/torch-version.env
  local tp torch_dir
  tp=$(torch_prefix)
  torch_dir=$tp/share/cmake/Torch
  [ -f "$torch_dir/TorchConfig.cmake" ] || die "$torch_dir/TorchConfig.cmake missing (a torch without its C++ library?)"
  command -v nvcc >/dev/null || export PATH=$PATH:/usr/local/cuda/bin
  command -v nvcc >/dev/null || die "nvcc not found (the CUDA toolkit)"
  local gen=()
  command -v ninja >/dev/null && gen=(-G Ninja)
  local deps
  deps=$(cd "$dir/deps" && pwd)
  mkdir -p "$build"
  local log=$build/configure.log
  # The carried folder is first in CMAKE_PREFIX_PATH, so its libraries and
  # headers are found before any the system has (of another version).
  cmake -S . -B "$build" "${gen[@]}" -DCMAKE_BUILD_TYPE=Release -DRASS_GPU_HOST=ON -DBUILD_TESTING=OFF \
    -DCMAKE_PREFIX_PATH="$deps" -DTorch_DIR="$torch_dir" -DRASS_REQUIRE_TORCH=ON -DRASS_REQUIRE_TORCH_CUDA=ON \
    -DRASS_TORCH_VERSION="$TORCH_VERSION" -DTORCH_CUDA_ARCH_LIST="$TORCH_CUDA_ARCH_LIST" ${CMAKE_FLAGS:-} >"$log" 2>&1 ||
    { cat "$log" >&2; die "configure failed (log: $log)"; }
  grep -E '^-- rass: LibTorch' "$log" >&2 || true
  if [ -n "${2:-}" ]; then  # one target (test-nn-cuda) in a configured folder
    cmake --build "$build" -j "${JOBS:-$(nproc)}" --target "$2"
    return
  fi
  cmake --build "$build" -j "${JOBS:-$(nproc)}"
  echo "build-gpu-host.sh: built $(for t in $tools; do [ -x "$build/$t" ] && printf '%s ' "$t"; done)in $build" >&2
}

env_exports() {
  local tp
  tp=$(torch_prefix)
  local deps
  deps=$(cd "$dir/deps" 2>/dev/null && pwd) || die "$dir/deps missing"
  echo "export LD_LIBRARY_PATH=$tp/lib$(cuda_lib_dirs "$tp"):$deps/lib\${LD_LIBRARY_PATH:+:\$LD_LIBRARY_PATH}"
}

case ${1:-} in
  pack) shift; pack "$@" ;;
  build) shift; [ $# -le 2 ] || die "build takes a build folder and a target"; build "$@" ;;
  env) shift; [ $# -eq 0 ] || die "env takes no arguments"; env_exports ;;
  -h|--help) usage ;;
  *) usage >&2; exit 2 ;;
esac
