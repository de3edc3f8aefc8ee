// LPIPS v0.1 (Zhang et al. 2018; the official PerceptualSimilarity / `lpips`
// package, BSD-2): an AlexNet or VGG16 trunk after the ScalingLayer, each
// tapped feature normalised to unit length over channels, squared
// differences weighted by the 1x1 "lin" heads, averaged over space and summed
// over the taps. Module names are the official LPIPS module's state-dict keys
// (scaling_layer.shift, net.slice1.0.weight, lin0.model.1.weight).
//
// Usable as a training loss: forward() is differentiable with respect to both
// images (the weights are frozen: requires_grad false).
#pragma once
#include <cstdint>
#include <vector>

#include <torch/nn/module.h>
#include <torch/nn/modules/conv.h>

#include "rass/nn/iqa_trunks.hpp"

namespace rass::nn {

enum class LpipsTrunk { alex, vgg };

struct LpipsImpl : torch::nn::Module {
  // `widths`: the trunk's conv output channels (empty: torchvision's); the
  // tests use narrow trunks of the same geometry.
  explicit LpipsImpl(LpipsTrunk trunk, std::vector<int64_t> widths = {});
  // x, y: [N,3,H,W] float in [-1,1] (the official code's range: 2 v - 1 for v
  // in [0,1], its normalize=True). Returns the N distances [N].
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& y);
  // The smallest image side the trunk accepts (AlexNet 31, VGG16 16).
  int64_t min_side() const { return min_side_; }

  torch::Tensor shift, scale;  // ScalingLayer buffers
  std::vector<FeatureSlice> slices;
  std::vector<torch::nn::Conv2d> lins;

 private:
  int64_t min_side_ = 1;
};
TORCH_MODULE(Lpips);

}  // namespace rass::nn
