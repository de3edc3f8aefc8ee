// DISTS (Ding et al. 2020; the official DISTS_pytorch, MIT): VGG16 with L2
// pooling in place of max pooling, the image itself and five tapped stages;
// per channel a structure term from means and a texture term from variances
// and covariance, weighted by alpha and beta (normalised to sum 1):
// 1 - sum(alpha S1 + beta S2). Module names are the official state-dict keys
// (stage1.0.weight, stage2.4.filter, mean, std, alpha, beta).
#pragma once
#include <cstdint>
#include <vector>

#include <torch/nn/module.h>

#include "rass/nn/iqa_trunks.hpp"

namespace rass::nn {

struct DistsImpl : torch::nn::Module {
  // `widths`: VGG16's 13 conv widths (empty: torchvision's); tests use narrow ones.
  explicit DistsImpl(std::vector<int64_t> widths = {});
  // x, y: [N,3,H,W] float in [0,1]. Returns the N distances [N]; differentiable.
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& y);
  std::vector<torch::Tensor> features(const torch::Tensor& x);

  std::vector<FeatureSlice> stages;
  torch::Tensor image_mean, image_std, alpha, beta;  // "mean", "std", "alpha", "beta"
  std::vector<int64_t> chns;  // the image's 3 channels, then each stage's
};
TORCH_MODULE(Dists);

}  // namespace rass::nn
