// The RASS feature projection (Ka1Guan/RASS rass/modeling/backbone/
// feature_projection.py, FeatureProjection.forward_features): one detectron2
// BottleneckBlock with GroupNorm(32) per backbone tap, then taps of equal
// nominal stride summed into res<log2(stride)>. Module names equal the
// released checkpoint's keys after "backbone.feature_extractor." is removed:
// feature_projections.<i>.0.{conv1,conv2,conv3,shortcut}.{weight,norm.weight,norm.bias}.
#pragma once
#include <string>
#include <vector>

#include <torch/nn/module.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/normalization.h>

#include "rass/nn/group_norm.hpp"

namespace rass::nn {

// detectron2 layers.Conv2d with a norm and no bias, as BottleneckBlock builds
// it: conv (weight), then norm (GroupNorm(32, out), eps 1e-5).
struct NormConv2dImpl : torch::nn::Module {
  NormConv2dImpl(int64_t in, int64_t out, int64_t kernel, int64_t padding);
  torch::Tensor forward(const torch::Tensor& x);
  torch::Tensor weight;
  rass::nn::GroupNorm norm{nullptr};
  int64_t padding;
};
TORCH_MODULE(NormConv2d);

// detectron2 modeling/backbone/resnet.py BottleneckBlock (stride 1, one
// group, dilation 1, norm "GN"): relu(conv1) -> relu(conv2 3x3) -> conv3,
// plus the shortcut (a 1x1 NormConv2d when in != out, else identity), relu.
struct BottleneckBlockImpl : torch::nn::Module {
  BottleneckBlockImpl(int64_t in, int64_t bottleneck, int64_t out);
  torch::Tensor forward(const torch::Tensor& x);
  NormConv2d conv1{nullptr}, conv2{nullptr}, conv3{nullptr}, shortcut{nullptr};
};
TORCH_MODULE(BottleneckBlock);

struct FeatureProjectionConfig {
  std::vector<int64_t> feature_dims;     // channels of each tap (RASS: 256, 512, 1280, 1280, 640, 320)
  std::vector<int64_t> feature_strides;  // nominal stride of each tap (RASS: 4, 8, 32, 16, 8, 8)
  int64_t projection_dim = 512;          // bottleneck = projection_dim / 4
  int64_t min_stride = 4, max_stride = 32;
  std::vector<std::string> out_features{"res2", "res3", "res4", "res5"};
};

// One output level: its name, stride and the taps summed into it.
struct ProjectionLevel {
  std::string name;  // res<log2(stride)>
  int64_t stride = 0;
  std::vector<size_t> taps;
};
// The reference's grouping (every tap its own group, as RASS's config has
// it): strides clamped to [min_stride, max_stride], grouped by stride,
// ascending; levels not in out_features dropped.
std::vector<ProjectionLevel> projection_levels(const FeatureProjectionConfig& c);

struct FeatureProjectionImpl : torch::nn::Module {
  explicit FeatureProjectionImpl(const FeatureProjectionConfig& c);
  // taps: one [B, C_i, h_i, w_i] tensor per feature_dims entry; each is
  // nearest-resized to (H / stride, W / stride) of the input image size H x W
  // (floor division), projected, and summed per level. Returns one tensor per
  // level, in projection_levels order.
  std::vector<torch::Tensor> forward(const std::vector<torch::Tensor>& taps, int64_t height, int64_t width);
  FeatureProjectionConfig config;
  std::vector<ProjectionLevel> levels;
  torch::nn::ModuleList feature_projections;  // <i> -> ModuleList{BottleneckBlock} ("<i>.0")
};
TORCH_MODULE(FeatureProjection);

}  // namespace rass::nn
