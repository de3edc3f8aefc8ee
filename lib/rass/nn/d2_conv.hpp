// detectron2's Conv2d (layers/wrappers.py): a torch Conv2d whose parameters
// are its own "weight" / "bias" and whose optional normalisation is a child
// named "norm", applied conv -> norm -> activation. Mask2Former's heads use it
// with GroupNorm and an optional ReLU, so state-dict keys read
// adapter_1.weight, adapter_1.norm.weight, ...
#pragma once
#include <torch/nn/module.h>
#include <torch/nn/modules/normalization.h>
#include <torch/nn/pimpl.h>

#include "rass/nn/group_norm.hpp"

namespace rass::nn {

struct D2Conv2dOptions {
  int64_t in, out, kernel = 1, padding = 0;
  bool bias = true;
  int64_t norm_groups = 0;  // 0: no norm; else GroupNorm(norm_groups, out)
  bool relu = false;
};

struct D2Conv2dImpl : torch::nn::Module {
  explicit D2Conv2dImpl(const D2Conv2dOptions& o);
  torch::Tensor forward(const torch::Tensor& x);
  // fvcore's c2_xavier_fill: kaiming_uniform_(a=1) weights, zero bias.
  void c2_xavier_fill();

  D2Conv2dOptions options;
  torch::Tensor weight, bias;
  rass::nn::GroupNorm norm{nullptr};
};
TORCH_MODULE(D2Conv2d);

}  // namespace rass::nn
