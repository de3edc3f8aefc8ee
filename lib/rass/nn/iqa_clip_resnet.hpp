// OpenAI CLIP's ResNet image encoder (ModifiedResNet of clip/model.py, MIT):
// a three-convolution stem with an average pool, Bottleneck stages whose
// stride-2 blocks downsample by average pooling (anti-aliased: avgpool before
// the 1x1 conv3 and in the shortcut), and an attention pool in place of the
// global average pool (the mean token queries the grid). Module names are
// OpenAI's state-dict keys under `visual.`: conv1..3, bn1..3, layer1..4.i.
// {conv1..3, bn1..3, downsample.{0,1}}, attnpool.{positional_embedding,
// q_proj, k_proj, v_proj, c_proj}. Inference only (BatchNorm in eval mode).
#pragma once
#include <array>

#include <torch/nn/module.h>
#include <torch/nn/modules/batchnorm.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/linear.h>

#include "rass/nn/linear.hpp"

namespace rass::nn {

struct ClipResNetConfig {
  std::array<int64_t, 4> layers{3, 4, 6, 3};  // RN50
  int64_t width = 64;                          // stem output; stages are width*{1,2,4,8}*4 wide
  int64_t heads = 32;                          // attention pool heads (OpenAI: width * 32 / 64)
  int64_t output_dim = 1024;                   // embedding size
  int64_t positions = 50;                      // positional embedding rows: grid^2 + 1 (7x7 at 224)
};

// How the attention pool treats its positional embedding.
enum class ClipPositional {
  none,         // not added (pyiqa's clipiqa: pos_embedding=False)
  interpolate,  // resized to (H*W + 1) rows by bicubic interpolation of the
                // whole [positions, C] table as one image (align_corners
                // false), class row included: pyiqa's pos_embedding=True.
                // At the native grid it is the table itself (OpenAI's CLIP).
};

struct ClipResNetImpl : torch::nn::Module {
  explicit ClipResNetImpl(const ClipResNetConfig& c);
  // x: [N,3,H,W] normalised with CLIP's mean/std -> [N, output_dim].
  // Throws Error(bad_input) when the image is too small for the five halvings.
  torch::Tensor forward(const torch::Tensor& x, ClipPositional positional);
  // The stem and the four stages: [N, width*32, h, w].
  torch::Tensor trunk(const torch::Tensor& x);

  ClipResNetConfig config;
  torch::nn::Conv2d conv1{nullptr}, conv2{nullptr}, conv3{nullptr};
  torch::nn::BatchNorm2d bn1{nullptr}, bn2{nullptr}, bn3{nullptr};
  std::array<torch::nn::ModuleList, 4> stages;
  std::shared_ptr<torch::nn::Module> attnpool;
  torch::Tensor positional_embedding;
  rass::nn::Linear q_proj{nullptr}, k_proj{nullptr}, v_proj{nullptr}, c_proj{nullptr};
};
TORCH_MODULE(ClipResNet);

// The smallest side length the network accepts (its grid must not vanish).
int64_t clip_resnet_min_side();

}  // namespace rass::nn
