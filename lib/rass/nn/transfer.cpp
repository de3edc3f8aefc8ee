#include "rass/nn/transfer.hpp"

#include <ATen/ATen.h>
#include <c10/core/impl/DeviceGuardImplInterface.h>

namespace rass::nn {

at::Tensor host_to_device(const at::Tensor& host, c10::Device device, c10::ScalarType dtype) {
  if (!device.is_cuda() || !host.device().is_cpu()) return host.to(device, dtype);
  // contiguous first: a strided view (a window of a larger image) would pin
  // the whole span and then be copied once more to unpinned memory.
  return host.contiguous().pin_memory().to(device, /*non_blocking=*/true).to(dtype);
}

std::vector<at::Tensor> device_to_host(const std::vector<at::Tensor>& tensors) {
  std::vector<at::Tensor> out(tensors.size());
  c10::Device cuda = c10::kCPU;
  for (size_t i = 0; i < tensors.size(); ++i) {
    const at::Tensor& t = tensors[i];
    if (!t.defined()) continue;
    if (!t.device().is_cuda()) {
      out[i] = t.to(c10::kCPU);
      continue;
    }
    cuda = t.device();
    // Pinned destination: only then is a device-to-host copy asynchronous.
    out[i] = at::empty(t.sizes(), t.options().device(c10::kCPU).pinned_memory(true));
    out[i].copy_(t, /*non_blocking=*/true);
  }
  if (cuda.is_cuda()) c10::impl::getDeviceGuardImpl(c10::DeviceType::CUDA)->getStream(cuda).synchronize();
  return out;
}

}  // namespace rass::nn
