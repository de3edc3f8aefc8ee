// AutoencoderKL (diffusers v0.25 models/autoencoders/autoencoder_kl.py, vae.py)
// with the reference's module names: encoder.{conv_in, down_blocks.i.resnets.j,
// down_blocks.i.downsamplers.0, mid_block.{resnets,attentions}, conv_norm_out,
// conv_out}, quant_conv, post_quant_conv, decoder.{conv_in, mid_block,
// up_blocks.i.{resnets, upsamplers.0}, conv_norm_out, conv_out}.
#pragma once
#include <string>
#include <vector>

#include <torch/nn/module.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/normalization.h>

#include "rass/nn/blocks.hpp"
#include "rass/nn/group_norm.hpp"

namespace rass::nn {

struct VaeConfig {
  int64_t in_channels = 3, out_channels = 3, latent_channels = 4;
  std::vector<int64_t> block_out_channels{128, 256, 512, 512};
  int64_t layers_per_block = 2;
  int64_t norm_num_groups = 32;
  double scaling_factor = 0.18215;
  bool mid_block_add_attention = true;
};

// UNetMidBlock2D as used by the VAE: resnet, then (attention, resnet) pairs.
struct VaeMidBlockImpl : torch::nn::Module {
  VaeMidBlockImpl(int64_t channels, int64_t groups, bool attention);
  // `checkpointing`: each resnet and the attention recomputed in the backward
  // pass (nn/activation_checkpoint.hpp).
  torch::Tensor forward(torch::Tensor x, bool checkpointing = false);
  torch::nn::ModuleList resnets, attentions;
};
TORCH_MODULE(VaeMidBlock);

struct VaeEncoderImpl : torch::nn::Module {
  explicit VaeEncoderImpl(const VaeConfig& c);
  // With `down_outputs`, also records every down block's output (after its
  // downsampler), in order: RASS taps down_blocks[1] and [3] as features.
  torch::Tensor forward(torch::Tensor x, std::vector<torch::Tensor>* down_outputs = nullptr);
  LoraConv2d conv_in{nullptr}, conv_out{nullptr};
  torch::nn::ModuleList down_blocks;
  VaeMidBlock mid_block{nullptr};
  rass::nn::GroupNorm conv_norm_out{nullptr};
  bool gradient_checkpointing = false;  // AutoencoderKLImpl::set_gradient_checkpointing
};
TORCH_MODULE(VaeEncoder);

struct VaeDecoderImpl : torch::nn::Module {
  explicit VaeDecoderImpl(const VaeConfig& c);
  torch::Tensor forward(torch::Tensor z);
  LoraConv2d conv_in{nullptr}, conv_out{nullptr};
  torch::nn::ModuleList up_blocks;
  VaeMidBlock mid_block{nullptr};
  rass::nn::GroupNorm conv_norm_out{nullptr};
  bool gradient_checkpointing = false;  // AutoencoderKLImpl::set_gradient_checkpointing
};
TORCH_MODULE(VaeDecoder);

struct LatentDistribution {
  torch::Tensor mean, logvar, std;  // logvar clamped to [-30, 20]
  torch::Tensor sample(torch::Generator gen = {}) const;
  const torch::Tensor& mode() const { return mean; }
};

struct AutoencoderKLImpl : torch::nn::Module {
  explicit AutoencoderKLImpl(const VaeConfig& c);
  // `down_outputs`: see VaeEncoderImpl::forward.
  LatentDistribution encode(const torch::Tensor& x, std::vector<torch::Tensor>* down_outputs = nullptr);
  torch::Tensor decode(const torch::Tensor& z);
  // diffusers' enable_gradient_checkpointing of AutoencoderKL, finer: every
  // resnet, the mid block's attention and every down/upsampler of the
  // encoder and the decoder recomputed in the backward pass while grad mode
  // is on (diffusers recomputes whole blocks: here the replay of the
  // decoder's last level holds one resnet's activations at a time, not three).
  void set_gradient_checkpointing(bool on);
  VaeConfig config;
  VaeEncoder encoder{nullptr};
  VaeDecoder decoder{nullptr};
  LoraConv2d quant_conv{nullptr}, post_quant_conv{nullptr};
};
TORCH_MODULE(AutoencoderKL);

}  // namespace rass::nn
