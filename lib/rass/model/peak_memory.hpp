// The memory a run has needed so far, as the network tools' --timings and
// rass-train's log report it: the process's peak resident set (weights,
// libraries, every thread: what a machine must have) and, on a CUDA device,
// LibTorch's caching allocator's peaks (the tensors at their most, and what
// it held from the driver; nvidia-smi adds the CUDA context to the latter).
// On the CPU, where counting is on (cpu_tensor_bytes.hpp), the tensors' own
// peak too: the figure that compares with the allocator's on a device.
// Also how much more a device could hold (device_room_bytes).
#pragma once
#include <cstdint>
#include <string>

#include <c10/core/Device.h>

namespace rass::model {

struct PeakMemory {
  int64_t resident = 0;    // bytes; 0 where the system does not say
  // Bytes in tensors at most on `device`: CUDA's allocator, or the CPU
  // counter where it is on (since the model loaded, weights included);
  // -1 where nothing counts.
  int64_t allocated = -1;
  int64_t reserved = -1;  // CUDA only
};

PeakMemory peak_memory(const c10::Device& device);

// The tensors' part alone since the last call, and its restart: on CUDA the
// allocator's peak allocated and reserved bytes, on the CPU the counted
// tensors' peak (reserved -1); {-1, -1} where nothing counts. Atomic on the
// CPU; on CUDA a reading, then the reset (an allocation between the two is
// unseen). --timings takes it around each stage to give each its own peak
// (stage_times.hpp).
struct TensorPeak {
  int64_t allocated = -1, reserved = -1;
};
TensorPeak take_tensor_peak(const c10::Device& device);

// How much more the device could hold, what a memory-adaptive choice (the
// tiled VAE's --vae-offload auto) weighs its next allocations against: on
// a CUDA device the driver's free bytes plus half of what the caching
// allocator holds but has not handed out (reserved less allocated: some of
// it sits in CUDA graphs' pools, other streams' blocks or pieces too small
// for a large tensor), an estimate. -1 where unknown: the CPU, a build
// without CUDA, a failed query.
int64_t device_room_bytes(const c10::Device& device);

// "9.12 GiB allocated on cuda:0 (9.80 GiB reserved), the process's resident
// set 3.41 GiB"; the allocator's part only on CUDA; on the CPU with counting
// on, "7.90 GiB (or 0.85 MiB) in CPU tensors after loading, the process's resident set 9.30 GiB".
std::string peak_memory_text(const c10::Device& device);
// The same of figures at hand (the tensors' part as --timings gathered it).
std::string peak_memory_text(const c10::Device& device, const PeakMemory& m);

}  // namespace rass::model
