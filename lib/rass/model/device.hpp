// --device and --dtype of the network tools, parsed one way: usage errors
// (exit 2) for what is not a device or dtype name, a runtime error (exit 1)
// for CUDA asked of a build or machine without it.
#pragma once
#include <string>

#include <c10/core/Device.h>
#include <c10/core/ScalarType.h>

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

}  // namespace rass::model
