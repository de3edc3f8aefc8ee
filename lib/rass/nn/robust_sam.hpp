// RobustSAM's additions to SAM's mask decoder (robustsam/RobustSAM,
// robust_segment_anything/modeling/components.py and mask_decoder.py; seed
// 001's main baseline): the anti-degradation mask feature generation (AMFG:
// the Fourier feature blocks over the encoder's early features, its final
// embedding and the decoder's mask features) and the anti-degradation output
// token generation (AOTG: the robust output tokens, their token block and
// MLP). Module names equal the released checkpoints' keys under
// mask_decoder.*, so a converted checkpoint loads with no renaming table.
//
// As the reference computes them:
// - BatchNorm2d in training mode, as its build (which never calls .eval())
//   leaves it for eval.py: each image's (each prompt's) own statistics, then
//   BN's weight and bias; InstanceNorm2d and InstanceNorm1d have no affine
//   parameters; all with biased variance and eps 1e-5;
// - LeakyReLU's slope is 0.01; the selector's two attention maps are a
//   softmax over the pair, 4x4 cells upsampled by nearest neighbour;
// - the Fourier block changes the magnitude of fft2 by a 1x1 convolution and
//   keeps the phase (in float32 whatever the dtype);
// - the token block normalises a token over its features twice and, as its
//   view(num_mask_tokens, -1) does for one prompt, maps the first
//   transformer_dim / num_mask_tokens features.
#pragma once
#include <utility>

#include <torch/nn/module.h>
#include <torch/nn/modules/container/sequential.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/embedding.h>

#include "rass/nn/linear.hpp"

namespace rass::nn {

// nn.BatchNorm2d as RobustSAM's eval.py runs it: training mode on a batch of
// one (its num_batches_tracked is not kept; its running statistics are
// loaded, not read).
struct RobustBatchNorm2dImpl : torch::nn::Module {
  explicit RobustBatchNorm2dImpl(int64_t channels);
  torch::Tensor forward(const torch::Tensor& x);
  torch::Tensor weight, bias, running_mean, running_var;
};
TORCH_MODULE(RobustBatchNorm2d);

// components.py Selector: two spatial attention maps that sum to one.
struct RobustSelectorImpl : torch::nn::Module {
  RobustSelectorImpl(int64_t channels, int64_t reduction);
  std::pair<torch::Tensor, torch::Tensor> forward(const torch::Tensor& x);
  torch::nn::Sequential fc;  // 0 Linear (no bias), 1 ReLU
  Linear att_conv1{nullptr}, att_conv2{nullptr};
};
TORCH_MODULE(RobustSelector);

// components.py SelectiveConv (first = False): a batch-normalised and an
// instance-normalised branch, mixed by the selector.
struct RobustSelectiveConvImpl : torch::nn::Module {
  RobustSelectiveConvImpl(int64_t in, int64_t out, int64_t reduction);
  torch::Tensor forward(const torch::Tensor& x);
  torch::nn::Conv2d conv1{nullptr}, conv2{nullptr};
  RobustSelector selector{nullptr};
  RobustBatchNorm2d BN{nullptr};
};
TORCH_MODULE(RobustSelectiveConv);

// components.py CABlock: squeeze-and-excitation over channels.
struct RobustChannelAttentionImpl : torch::nn::Module {
  explicit RobustChannelAttentionImpl(int64_t channels);
  torch::Tensor forward(const torch::Tensor& x);
  torch::nn::Sequential excitation;  // 0 Linear, 1 ReLU, 2 Linear, 3 Sigmoid
};
TORCH_MODULE(RobustChannelAttention);

// components.py SKDown: its SelectiveConv as maxpool_conv.0.
struct RobustSkDownImpl : torch::nn::Module {
  RobustSkDownImpl(int64_t channels, int64_t reduction);
  torch::Tensor forward(const torch::Tensor& x);
  torch::nn::Sequential maxpool_conv;
};
TORCH_MODULE(RobustSkDown);

// components.py DNCBlock_combined: [x, SKDown(x)] through channel attention (2C channels out).
struct RobustDncBlockImpl : torch::nn::Module {
  explicit RobustDncBlockImpl(int64_t channels);
  torch::Tensor forward(const torch::Tensor& x);
  RobustChannelAttention channel_attention{nullptr};
  RobustSkDown SEMBlock{nullptr};
};
TORCH_MODULE(RobustDncBlock);

// components.py FGMBlock: a 1x1 convolution of the spectrum's magnitude.
struct RobustFourierBlockImpl : torch::nn::Module {
  explicit RobustFourierBlockImpl(int64_t channels);
  torch::Tensor forward(const torch::Tensor& x);
  torch::nn::Conv2d conv_layer{nullptr};
};
TORCH_MODULE(RobustFourierBlock);

// components.py FirstLayerFeatureBlock / LastLayerFeatureBlock (upsampling
// x4 to transformer_dim / 8 channels) and MaskFeatureBlock (same size):
// DNC, FGM and a 3x3 convolution back to `channels`, then `resample`.
struct RobustFeatureBlockImpl : torch::nn::Module {
  enum class Kind { first_layer, last_layer, mask };
  RobustFeatureBlockImpl(Kind kind, int64_t channels, int64_t transformer_dim);
  torch::Tensor forward(const torch::Tensor& x);
  RobustDncBlock dnc_block_combined{nullptr};
  RobustFourierBlock fgm_block{nullptr};
  torch::nn::Conv2d conv_layer{nullptr};
  torch::nn::Sequential resample;  // upsample_layer or downsample_layer
};
TORCH_MODULE(RobustFeatureBlock);

// components.py TokenBlock as one prompt runs it: [B, D] tokens -> [B, D].
struct RobustTokenBlockImpl : torch::nn::Module {
  RobustTokenBlockImpl(int64_t num_tokens, int64_t transformer_dim);
  torch::Tensor forward(const torch::Tensor& tokens);
  torch::nn::Sequential mlp;  // 0 Linear, 1 ReLU, 2 Linear
  int64_t chunk;              // transformer_dim / num_tokens
};
TORCH_MODULE(RobustTokenBlock);

}  // namespace rass::nn
