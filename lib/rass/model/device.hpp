// --device and --dtype of the network tools, parsed one way: usage errors
// (exit 2) for what is not a device or dtype name, a runtime error (exit 1)
// for CUDA asked of a build or machine without it.
#pragma once
#include <string>

#include <c10/core/Device.h>
#include <c10/core/ScalarType.h>

namespace at {
class Tensor;
}
namespace torch::nn {
class Module;
}

namespace rass::model {

c10::ScalarType parse_dtype(const std::string& s);  // fp32, fp16, bf16
c10::Device parse_device(const std::string& s);     // cpu, cuda, cuda:N

// Speed switches for the network tools (issue 14), each on its own flag so
// it can be measured: neither changes what is computed.
// Every 4-D parameter (convolution weights) of `m` to channels-last (NHWC)
// layout; a convolution with such a weight gives channels-last outputs, so
// the activations follow. GPUs' tensor-core convolutions work in NHWC.
void to_channels_last(torch::nn::Module& m);
// cuDNN's autotuner (process-wide): each new convolution shape is timed once.
void set_cudnn_benchmark(bool on);
// A host tensor on `device` in `dtype`: on CUDA through pinned memory (PyTorch's
// caching host allocator) and an asynchronous copy, so the host goes on
// queueing work while it runs; elsewhere a plain conversion.
at::Tensor host_to_device(const at::Tensor& host, c10::Device device, c10::ScalarType dtype);

}  // namespace rass::model
