#include "rass/nn/d2_conv.hpp"

#include <torch/nn/functional/conv.h>
#include <torch/nn/init.h>
#include <torch/torch.h>

#include "rass/nn/group_norm.hpp"

namespace rass::nn {

D2Conv2dImpl::D2Conv2dImpl(const D2Conv2dOptions& o) : options(o) {
  weight = register_parameter("weight", torch::empty({o.out, o.in, o.kernel, o.kernel}));
  if (o.bias) bias = register_parameter("bias", torch::zeros({o.out}));
  if (o.norm_groups > 0) norm = register_module("norm", rass::nn::GroupNorm(o.norm_groups, o.out));
  c2_xavier_fill();
}

void D2Conv2dImpl::c2_xavier_fill() {
  torch::NoGradGuard no_grad;
  torch::nn::init::kaiming_uniform_(weight, 1.0);
  if (bias.defined()) bias.zero_();
}

torch::Tensor D2Conv2dImpl::forward(const torch::Tensor& x) {
  torch::Tensor y = torch::conv2d(x, weight, bias, 1, options.padding);
  if (norm) y = norm(y);
  if (options.relu) y = torch::relu(y);
  return y;
}

}  // namespace rass::nn
