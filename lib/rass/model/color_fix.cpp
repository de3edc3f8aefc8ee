#include "rass/model/color_fix.hpp"

#include <torch/nn/functional/conv.h>
#include <torch/nn/functional/padding.h>

namespace rass::model {

namespace F = torch::nn::functional;

namespace {

// Per-channel mean and std = sqrt(unbiased var + eps), as [B, C, 1, 1].
std::pair<torch::Tensor, torch::Tensor> mean_std(const torch::Tensor& x, double eps = 1e-5) {
  const int64_t b = x.size(0), c = x.size(1);
  const torch::Tensor flat = x.reshape({b, c, -1});
  torch::Tensor std = (flat.var(2) + eps).sqrt().reshape({b, c, 1, 1});
  torch::Tensor mean = flat.mean(2).reshape({b, c, 1, 1});
  return {mean, std};
}

torch::Tensor wavelet_blur(const torch::Tensor& x, int64_t radius) {
  const torch::Tensor k = torch::tensor({0.0625, 0.125, 0.0625, 0.125, 0.25, 0.125, 0.0625, 0.125, 0.0625}, x.options())
                              .reshape({1, 1, 3, 3})
                              .repeat({x.size(1), 1, 1, 1});
  const torch::Tensor padded = F::pad(x, F::PadFuncOptions({radius, radius, radius, radius}).mode(torch::kReplicate));
  return F::conv2d(padded, k, F::Conv2dFuncOptions().groups(x.size(1)).dilation(radius));
}

// Returns (sum of the high-frequency bands, the last low pass), 5 levels.
std::pair<torch::Tensor, torch::Tensor> wavelet_decomposition(torch::Tensor x, int levels = 5) {
  torch::Tensor high = torch::zeros_like(x), low;
  for (int i = 0; i < levels; ++i) {
    low = wavelet_blur(x, int64_t(1) << i);
    high += x - low;
    x = low;
  }
  return {high, low};
}

}  // namespace

torch::Tensor adain_color_fix(const torch::Tensor& target, const torch::Tensor& source) {
  auto [sm, ss] = mean_std(source);
  auto [tm, ts] = mean_std(target);
  return ((target - tm.expand(target.sizes())) / ts.expand(target.sizes()) * ss.expand(target.sizes()) +
          sm.expand(target.sizes()))
      .clamp(0.0, 1.0);
}

torch::Tensor wavelet_color_fix(const torch::Tensor& target, const torch::Tensor& source) {
  torch::Tensor high = wavelet_decomposition(target).first;
  torch::Tensor low = wavelet_decomposition(source).second;
  return (high + low).clamp(0.0, 1.0);
}

torch::Tensor color_fix(ColorFix kind, const torch::Tensor& target, const torch::Tensor& source) {
  switch (kind) {
    case ColorFix::adain: return adain_color_fix(target, source);
    case ColorFix::wavelet: return wavelet_color_fix(target, source);
    case ColorFix::none: break;
  }
  return target;
}

}  // namespace rass::model
