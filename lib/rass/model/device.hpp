// --device and --dtype of the network tools, parsed one way: usage errors
// (exit 2) for what is not a device or dtype name, a runtime error (exit 1)
// for CUDA asked of a build or machine without it.
#pragma once
#include <functional>
#include <string>
#include <vector>

#include <c10/core/Device.h>
#include <c10/core/ScalarType.h>
#include <c10/core/Stream.h>

#include "rass/nn/transfer.hpp"

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
// host_to_device, device_to_host: copies without needless waits.
using nn::device_to_host;
using nn::host_to_device;

// One stream per worker of -j on a CUDA device, so that one worker's waits
// (device_to_host) do not also wait for the kernels another worker queued,
// and one worker's file decoding and encoding overlaps the other's compute.
// Each worker keeps its stream for the whole run: PyTorch's caching
// allocator keeps freed blocks per stream, so a stream per call would hold
// a cache for each. On other devices, or with one worker, `run` just calls.
class WorkerStreams {
 public:
  WorkerStreams(c10::Device device, int workers);
  // f() with worker `w`'s stream current on this thread.
  void run(int w, const std::function<void()>& f) const;

 private:
  std::vector<c10::Stream> streams_;
};

}  // namespace rass::model
