// torch::nn::Linear with PyTorch's linear (aten::linear) as its forward.
// Why: LibTorch's C++ torch::nn::functional::linear, which torch::nn::Linear
// calls, fuses the bias only for 2-D inputs; for [batch, tokens, features] it
// runs a matrix product and then adds the bias as a second kernel (an extra
// pass over the output). aten::linear, what Python's F.linear calls, folds
// such an input into one addmm with the bias in the product's epilogue.
// Traced (RASS_TRACE, scripts/trace_summary.py): rass-restore ran 86 more
// kernels per image than diffusers for this alone. Same parameters, names
// and options as torch::nn::Linear, so checkpoints load unchanged.
// forward is not virtual in LibTorch: reach it through this class
// (rass::nn::Linear, as<rass::nn::LinearImpl>()), not as<torch::nn::LinearImpl>(),
// whose forward is LibTorch's; and clone() gives back a torch::nn::LinearImpl.
#pragma once
#include <ostream>

#include <ATen/ATen.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/pimpl.h>

namespace rass::nn {

class LinearImpl : public torch::nn::LinearImpl {
 public:
  using torch::nn::LinearImpl::LinearImpl;
  torch::Tensor forward(const torch::Tensor& input) { return at::linear(input, weight, bias); }
  void pretty_print(std::ostream& stream) const override {
    stream << "rass::nn::Linear(in_features=" << options.in_features() << ", out_features=" << options.out_features()
           << ", bias=" << (options.bias() ? "true" : "false") << ")";
  }
};
TORCH_MODULE(Linear);

}  // namespace rass::nn
