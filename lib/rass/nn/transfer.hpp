// Copies between the host and the model's device without needless waits.
// On CUDA a copy from ordinary (pageable) memory makes the host wait for the
// device to finish all its queued work first (PyTorch synchronises the
// stream after a blocking copy), so even a handful of numbers sent up in the
// middle of a forward pass stalls the GPU; these go through pinned memory
// and asynchronous copies instead. Elsewhere they are plain conversions.
#pragma once
#include <vector>

#include <c10/core/Device.h>
#include <c10/core/ScalarType.h>

namespace at {
class Tensor;
}

namespace rass::nn {

// A host tensor on `device` in `dtype`: on CUDA through pinned memory
// (PyTorch's caching host allocator keeps the buffer until the copy ran) and
// an asynchronous copy, so the host goes on queueing work.
at::Tensor host_to_device(const at::Tensor& host, c10::Device device, c10::ScalarType dtype);

// The tensors on the host (CPU), waiting once: on CUDA every copy is queued
// into pinned memory and then the current stream is synchronised a single
// time (a plain .to(kCPU) per tensor waits for each); elsewhere a plain
// conversion. Undefined tensors stay undefined.
std::vector<at::Tensor> device_to_host(const std::vector<at::Tensor>& tensors);

}  // namespace rass::nn
