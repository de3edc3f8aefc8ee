// CPU threads of the network tools, set once in one place.
#pragma once

namespace rass::nn {

// LibTorch's intra-op threads = `threads` (0: all cores), and OpenBLAS's own
// pool = 1 when the BLAS behind LibTorch is OpenBLAS (Debian's libtorch uses
// whatever libblas.so.3 the alternatives system names). OpenBLAS otherwise
// starts one thread per core inside every GEMM, on top of LibTorch's threads
// and of --jobs items in flight: on 2 cores the tiny test model restored 3
// images in 4.2 s instead of 3.0 s with identical bytes, and the SD
// 2.1-base-sized model was no slower (33.5 vs 34.1 s per 512x512 image, within
// noise), so the pool is pinned to 1 thread always.
void set_cpu_threads(int threads);

// The network tools' --threads: `threads` when positive, else the cores
// shared among `jobs` items in flight (at least 1 each).
void set_item_threads(int threads, int jobs);

}  // namespace rass::nn
