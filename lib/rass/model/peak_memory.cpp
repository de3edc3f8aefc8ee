#include "rass/model/peak_memory.hpp"

#include <sys/resource.h>

#include <algorithm>
#include <cstdio>

#include "rass/model/cpu_tensor_bytes.hpp"

#ifdef RASS_TORCH_CUDA
#include <cuda_runtime_api.h>

#include <c10/cuda/CUDACachingAllocator.h>
#include <c10/cuda/CUDAFunctions.h>
#include <c10/cuda/CUDAGuard.h>
#endif

namespace rass::model {

#ifdef RASS_TORCH_CUDA
namespace {
c10::DeviceIndex cuda_index(const c10::Device& device) {
  return device.has_index() ? device.index() : c10::cuda::current_device();
}
}  // namespace
#endif

namespace {
TensorPeak tensor_peak(const c10::Device& device) {
  TensorPeak p;
#ifdef RASS_TORCH_CUDA
  if (device.is_cuda()) {
    const auto stats = c10::cuda::CUDACachingAllocator::getDeviceStats(cuda_index(device));
    // [0]: StatType::AGGREGATE (over both pools), whose namespace moved
    // between LibTorch versions (c10::cuda::CUDACachingAllocator before 2.5).
    constexpr size_t all = 0;
    p.allocated = stats.allocated_bytes[all].peak;
    p.reserved = stats.reserved_bytes[all].peak;
  }
#endif
  if (device.is_cpu() && cpu_tensor_bytes_counted()) p.allocated = cpu_tensor_bytes().peak;
  return p;
}
}  // namespace

TensorPeak take_tensor_peak(const c10::Device& device) {
  if (device.is_cpu()) return {take_cpu_tensor_peak(), -1};
  const TensorPeak p = tensor_peak(device);
#ifdef RASS_TORCH_CUDA
  if (device.is_cuda()) c10::cuda::CUDACachingAllocator::resetPeakStats(cuda_index(device));
#endif
  return p;
}

PeakMemory peak_memory(const c10::Device& device) {
  PeakMemory m;
  struct rusage ru {};
  if (::getrusage(RUSAGE_SELF, &ru) == 0) m.resident = int64_t(ru.ru_maxrss) * 1024;  // Linux: kilobytes
  const TensorPeak p = tensor_peak(device);
  m.allocated = p.allocated;
  m.reserved = p.reserved;
  return m;
}

int64_t device_room_bytes(const c10::Device& device) {
#ifdef RASS_TORCH_CUDA
  if (device.is_cuda()) {
    const c10::DeviceIndex index = cuda_index(device);
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
    constexpr size_t all = 0;  // StatType::AGGREGATE, as tensor_peak
    return int64_t(free) + std::max<int64_t>(0, stats.reserved_bytes[all].current - stats.allocated_bytes[all].current) / 2;
  }
#endif
  (void)device;
  return -1;
}

std::string peak_memory_text(const c10::Device& device) { return peak_memory_text(device, peak_memory(device)); }

std::string peak_memory_text(const c10::Device& device, const PeakMemory& m) {
  const double gib = double(int64_t(1) << 30);
  char line[200] = "";
  if (m.allocated >= 0 && !device.is_cpu())
    std::snprintf(line, sizeof line, "%.2f GiB allocated on %s (%.2f GiB reserved), ", double(m.allocated) / gib,
                  device.str().c_str(), double(m.reserved) / gib);
  // MiB below a GiB: the tiny test models' weights are a few hundred KiB.
  else if (m.allocated >= gib)
    std::snprintf(line, sizeof line, "%.2f GiB in CPU tensors after loading, ", double(m.allocated) / gib);
  else if (m.allocated >= 0)
    std::snprintf(line, sizeof line, "%.2f MiB in CPU tensors after loading, ", double(m.allocated) / (1 << 20));
  std::string out = line;
  std::snprintf(line, sizeof line, "the process's resident set %.2f GiB", double(m.resident) / gib);
  return out + line;
}

}  // namespace rass::model
