#include "rass/model/device_room.hpp"

#include <algorithm>

#ifdef RASS_TORCH_CUDA
#include <cuda_runtime_api.h>

#include <c10/cuda/CUDACachingAllocator.h>
#include <c10/cuda/CUDAFunctions.h>
#include <c10/cuda/CUDAGuard.h>
#endif

namespace rass::model {

int64_t device_room_bytes(const c10::Device& device) {
#ifdef RASS_TORCH_CUDA
  if (device.is_cuda()) {
    const c10::DeviceIndex index = device.has_index() ? device.index() : c10::cuda::current_device();
    const c10::cuda::CUDAGuard guard(index);  // cudaMemGetInfo reads the current device
    size_t free = 0, total = 0;
    if (cudaMemGetInfo(&free, &total) != cudaSuccess) {
      (void)cudaGetLastError();  // not left for the next kernel launch to report
      return -1;
    }
    // Half of what the caching allocator holds unused: part of it is in CUDA
    // graphs' private pools and other streams' blocks, or in pieces too
    // small for an activation, none of which a new tensor here can take.
    const auto stats = c10::cuda::CUDACachingAllocator::getDeviceStats(index);
    constexpr size_t all = 0;  // StatType::AGGREGATE, as peak_memory.cpp
    return int64_t(free) + std::max<int64_t>(0, stats.reserved_bytes[all].current - stats.allocated_bytes[all].current) / 2;
  }
#endif
  (void)device;
  return -1;
}

}  // namespace rass::model
