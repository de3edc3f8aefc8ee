// How much more a device could hold: what a memory-adaptive choice (the tiled
// VAE's --vae-offload auto) weighs its next allocations against.
#pragma once
#include <cstdint>

#include <c10/core/Device.h>

namespace rass::model {

// On a CUDA device: the driver's free bytes plus half of what LibTorch's
// caching allocator holds but has not handed out (reserved less allocated:
// some of it sits in CUDA graphs' pools, other streams' blocks or pieces too
// small for a large tensor), an estimate. -1 where unknown: the CPU, a build
// without CUDA, a failed query.
int64_t device_room_bytes(const c10::Device& device);

}  // namespace rass::model
