#include "rass/nn/feature_projection.hpp"

#include <algorithm>
#include <cmath>
#include <map>
#include <stdexcept>

#include <torch/nn/functional.h>
#include <torch/nn/init.h>

#include "rass/nn/group_norm.hpp"

namespace F = torch::nn::functional;

namespace rass::nn {

NormConv2dImpl::NormConv2dImpl(int64_t in, int64_t out, int64_t kernel, int64_t pad) : padding(pad) {
  weight = register_parameter("weight", torch::empty({out, in, kernel, kernel}));
  // detectron2 get_norm("GN", C) is GroupNorm(32, C).
  norm = register_module("norm", rass::nn::GroupNorm(torch::nn::GroupNormOptions(32, out).eps(1e-5)));
  torch::nn::init::kaiming_normal_(weight, 0.0, torch::kFanOut, torch::kReLU);  // c2_msra_fill
}

torch::Tensor NormConv2dImpl::forward(const torch::Tensor& x) {
  return norm(F::conv2d(x, weight, F::Conv2dFuncOptions().padding(padding)));
}

BottleneckBlockImpl::BottleneckBlockImpl(int64_t in, int64_t bottleneck, int64_t out) {
  if (in != out) shortcut = register_module("shortcut", NormConv2d(in, out, 1, 0));
  conv1 = register_module("conv1", NormConv2d(in, bottleneck, 1, 0));
  conv2 = register_module("conv2", NormConv2d(bottleneck, bottleneck, 3, 1));
  conv3 = register_module("conv3", NormConv2d(bottleneck, out, 1, 0));
}

torch::Tensor BottleneckBlockImpl::forward(const torch::Tensor& x) {
  torch::Tensor h = torch::relu(conv1(x));
  h = torch::relu(conv2(h));
  h = conv3(h);
  h = h + (shortcut ? shortcut(x) : x);
  return torch::relu(h);
}

std::vector<ProjectionLevel> projection_levels(const FeatureProjectionConfig& c) {
  std::map<int64_t, std::vector<size_t>> by_stride;
  for (size_t i = 0; i < c.feature_strides.size(); ++i)
    by_stride[std::min(std::max(c.feature_strides[i], c.min_stride), c.max_stride)].push_back(i);
  std::vector<ProjectionLevel> out;
  for (const auto& [stride, taps] : by_stride) {
    const std::string name = "res" + std::to_string(int(std::log2(double(stride))));
    if (std::find(c.out_features.begin(), c.out_features.end(), name) == c.out_features.end()) continue;
    out.push_back({name, stride, taps});
  }
  return out;
}

FeatureProjectionImpl::FeatureProjectionImpl(const FeatureProjectionConfig& c) : config(c), levels(projection_levels(c)) {
  if (c.feature_dims.size() != c.feature_strides.size())
    throw std::invalid_argument("feature projection: feature_dims and feature_strides differ in length");
  feature_projections = register_module("feature_projections", torch::nn::ModuleList());
  for (int64_t dim : c.feature_dims) {
    torch::nn::ModuleList stage;
    stage->push_back(BottleneckBlock(dim, c.projection_dim / 4, c.projection_dim));
    feature_projections->push_back(stage);
  }
}

std::vector<torch::Tensor> FeatureProjectionImpl::forward(const std::vector<torch::Tensor>& taps, int64_t height,
                                                          int64_t width) {
  if (taps.size() != config.feature_dims.size())
    throw std::invalid_argument("feature projection: " + std::to_string(taps.size()) + " taps for " +
                                std::to_string(config.feature_dims.size()) + " projections");
  std::vector<torch::Tensor> out;
  for (const ProjectionLevel& lv : levels) {
    torch::Tensor sum;
    for (size_t i : lv.taps) {
      // F.interpolate's default mode is nearest.
      const torch::Tensor r = F::interpolate(
          taps[i], F::InterpolateFuncOptions().size(std::vector<int64_t>{height / lv.stride, width / lv.stride}).mode(torch::kNearest));
      auto stage = feature_projections[i]->as<torch::nn::ModuleList>();
      const torch::Tensor p = (*stage)[0]->as<BottleneckBlock>()->forward(r);
      sum = sum.defined() ? sum + p : p;
    }
    out.push_back(sum);
  }
  return out;
}

}  // namespace rass::nn
