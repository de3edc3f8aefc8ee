#include "rass/nn/iqa_dists.hpp"

namespace rass::nn {

DistsImpl::DistsImpl(std::vector<int64_t> widths) {
  if (widths.empty()) widths = vgg16_widths();
  const auto layout = vgg16_slices(widths, /*l2pool=*/true);
  stages = add_slices(*this, "stage", layout);
  chns = {3};
  for (const auto& stage : layout) {
    int64_t channels = 0;
    for (const TrunkLayer& l : stage)
      if (l.kind == TrunkLayer::conv) channels = l.out;
    chns.push_back(channels);
  }
  int64_t total = 0;
  for (int64_t c : chns) total += c;
  image_mean = register_buffer("mean", torch::tensor({0.485f, 0.456f, 0.406f}).view({1, 3, 1, 1}));
  image_std = register_buffer("std", torch::tensor({0.229f, 0.224f, 0.225f}).view({1, 3, 1, 1}));
  alpha = register_parameter("alpha", torch::full({1, total, 1, 1}, 0.1f), /*requires_grad=*/false);
  beta = register_parameter("beta", torch::full({1, total, 1, 1}, 0.1f), /*requires_grad=*/false);
  for (torch::Tensor& p : parameters()) p.set_requires_grad(false);
  eval();
}

std::vector<torch::Tensor> DistsImpl::features(const torch::Tensor& x) {
  std::vector<torch::Tensor> out = {x};
  torch::Tensor h = (x - image_mean) / image_std;
  for (FeatureSlice& s : stages) out.push_back(h = s->forward(h));
  return out;
}

torch::Tensor DistsImpl::forward(const torch::Tensor& x, const torch::Tensor& y) {
  const std::vector<torch::Tensor> f0 = features(x), f1 = features(y);
  const double c1 = 1e-6, c2 = 1e-6;
  const torch::Tensor w_sum = alpha.sum() + beta.sum();
  const std::vector<torch::Tensor> a = torch::split_with_sizes(alpha / w_sum, chns, 1);
  const std::vector<torch::Tensor> b = torch::split_with_sizes(beta / w_sum, chns, 1);
  torch::Tensor dist1, dist2;
  for (size_t k = 0; k < chns.size(); ++k) {
    const torch::Tensor x_mean = f0[k].mean({2, 3}, true), y_mean = f1[k].mean({2, 3}, true);
    const torch::Tensor s1 = (2 * x_mean * y_mean + c1) / (x_mean.pow(2) + y_mean.pow(2) + c1);
    const torch::Tensor d1 = (a[k] * s1).sum(1, true);
    const torch::Tensor x_var = (f0[k] - x_mean).pow(2).mean({2, 3}, true);
    const torch::Tensor y_var = (f1[k] - y_mean).pow(2).mean({2, 3}, true);
    const torch::Tensor xy_cov = (f0[k] * f1[k]).mean({2, 3}, true) - x_mean * y_mean;
    const torch::Tensor s2 = (2 * xy_cov + c2) / (x_var + y_var + c2);
    const torch::Tensor d2 = (b[k] * s2).sum(1, true);
    // The reference starts from 0 (0 + d is d exactly).
    dist1 = k == 0 ? d1 : dist1 + d1;
    dist2 = k == 0 ? d2 : dist2 + d2;
  }
  return (1 - (dist1 + dist2)).reshape({-1});
}

}  // namespace rass::nn
