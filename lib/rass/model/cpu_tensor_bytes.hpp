// The bytes held by LibTorch's CPU tensors, now and at their most: the CPU's
// counterpart of the CUDA caching allocator's "allocated" statistics, which
// --timings reports on a GPU. The resident set (peak_memory.hpp) cannot tell
// tensors from libraries, allocator caches and freed pages not yet returned;
// this can, so a CPU run measures what the same computation would hold on a
// device (the tiled VAE at 2048 px, for the GPU memory target).
//
// Counting wraps the CPU allocator (a mutex and a table entry per
// allocation), so it is installed only for a measurement (--timings on the
// CPU), before the weights load; memory allocated before that is not counted.
#pragma once
#include <cstdint>

namespace rass::model {

// Installs the counting allocator (once; later calls do nothing).
void count_cpu_tensor_bytes();
bool cpu_tensor_bytes_counted();

struct CpuTensorBytes {
  int64_t now = 0, peak = 0;  // peak since the last reset_cpu_tensor_peak()
};
CpuTensorBytes cpu_tensor_bytes();
// The peak restarts from what is held now (e.g. once the weights are loaded).
void reset_cpu_tensor_peak();
// The peak, restarted at once (no allocation between the reading and the
// reset goes unseen); -1 when not counting.
int64_t take_cpu_tensor_peak();

}  // namespace rass::model
