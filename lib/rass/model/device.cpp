#include "rass/model/device.hpp"

#include <memory>

#include <ATen/Context.h>
#include <c10/core/StreamGuard.h>
#include <c10/core/impl/DeviceGuardImplInterface.h>
#include <torch/cuda.h>
#include <torch/nn/module.h>
#include <torch/utils.h>

#include "rass/core/error.hpp"

namespace rass::model {

void to_channels_last(torch::nn::Module& m) {
  torch::NoGradGuard no_grad;
  for (torch::Tensor& p : m.parameters())
    if (p.dim() == 4) p.set_data(p.contiguous(at::MemoryFormat::ChannelsLast));
}

void set_cudnn_benchmark(bool on) { at::globalContext().setBenchmarkCuDNN(on); }

WorkerStreams::WorkerStreams(c10::Device device, int workers) {
  if (!device.is_cuda() || workers < 2) return;
  const c10::impl::DeviceGuardImplInterface* impl = c10::impl::getDeviceGuardImpl(c10::DeviceType::CUDA);
  if (!device.has_index()) device = c10::Device(c10::DeviceType::CUDA, 0);
  // The model's weights were copied on the default stream: finished before
  // other streams read them.
  impl->getStream(device).synchronize();
  for (int w = 0; w < workers; ++w) streams_.push_back(impl->getStreamFromGlobalPool(device));
}

void WorkerStreams::run(int w, const std::function<void()>& f) const {
  if (streams_.empty()) {
    f();
    return;
  }
  c10::StreamGuard guard(streams_[size_t(w) % streams_.size()]);
  f();
}

c10::ScalarType parse_dtype(const std::string& s) {
  if (s == "fp32") return c10::kFloat;
  if (s == "fp16") return c10::kHalf;
  if (s == "bf16") return c10::kBFloat16;
  throw_usage("--dtype " + s + ": expected fp32, fp16 or bf16");
}

c10::Device parse_device(const std::string& s) {
  std::unique_ptr<c10::Device> d;
  try {
    d = std::make_unique<c10::Device>(s);
  } catch (const c10::Error&) {
    throw_usage("--device " + s + ": expected cpu, cuda or cuda:N");
  }
  if (!d->is_cpu() && !d->is_cuda()) throw_usage("--device " + s + ": expected cpu, cuda or cuda:N");
  // LibTorch 1.13 takes cpu:1 (2.x does not); there is one CPU device.
  if (d->is_cpu() && d->has_index() && d->index() != 0)
    throw_usage("--device " + s + ": the CPU is one device: cpu (or cpu:0)");
  if (d->is_cuda() && !torch::cuda::is_available())
    throw_runtime("--device " + s + ": CUDA is not available in this LibTorch build or on this machine");
  if (d->is_cuda() && d->has_index() && d->index() >= int(torch::cuda::device_count()))
    throw_usage("--device " + s + ": this machine has " + std::to_string(torch::cuda::device_count()) + " CUDA device(s)");
  return *d;
}

}  // namespace rass::model
