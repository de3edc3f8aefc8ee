// UNet2DConditionModel (diffusers v0.25 unet_2d_condition.py, unet_2d_blocks.py,
// transformer_2d.py, attention.py) for the SD 2.x family: CrossAttnDownBlock2D,
// DownBlock2D, UNetMidBlock2DCrossAttn, UpBlock2D, CrossAttnUpBlock2D,
// Transformer2DModel (conv or linear projection), BasicTransformerBlock with
// GEGLU feed-forward. Module names equal the reference's state-dict keys.
#pragma once
#include <string>
#include <vector>

#include <torch/nn/module.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/normalization.h>

#include "rass/nn/blocks.hpp"
#include "rass/nn/group_norm.hpp"

namespace rass::nn {

struct UNetConfig {
  int64_t in_channels = 4, out_channels = 4;
  std::vector<std::string> down_block_types{"CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D",
                                            "DownBlock2D"};
  std::vector<std::string> up_block_types{"UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"};
  std::vector<int64_t> block_out_channels{320, 640, 1280, 1280};
  int64_t layers_per_block = 2;
  std::vector<int64_t> transformer_layers_per_block{1, 1, 1, 1};
  int64_t norm_num_groups = 32;
  double norm_eps = 1e-5;
  int64_t cross_attention_dim = 1024;
  // Heads per block. diffusers' SD 2.x configs call this attention_head_dim
  // (a legacy name: the value is the number of heads) when num_attention_heads is null.
  std::vector<int64_t> num_attention_heads{5, 10, 20, 20};
  bool use_linear_projection = true;
  bool upcast_attention = false;
  bool flip_sin_to_cos = true;
  double freq_shift = 0;
  double mid_block_scale_factor = 1.0;
  int64_t downsample_padding = 1;
};

// What one UNet forward call records, owned by the caller: the modules keep
// no per-call state, so one loaded model serves several threads at once (each
// with its own UNetCaptures, or none).
struct CapturedAttention {
  std::string path;     // the Attention module, e.g. "up_blocks.1.attentions.0.transformer_blocks.0.attn2"
  torch::Tensor probs;  // softmax(q k^T / sqrt(d)): [batch*heads, queries (h*w), keys]
};
struct UNetCaptures {
  // What to record (set before the call).
  bool cross_attention = false;  // attn2 probabilities, keys = context tokens (the SCL loss)
  bool self_attention = false;   // attn1 probabilities
  bool up_blocks = false;        // the output of every up block (RASS taps them as features)
  // Filled by forward (cleared first), in call order. Tensors stay in the
  // autograd graph when grad mode is on.
  std::vector<CapturedAttention> attention;
  std::vector<torch::Tensor> up_block_outputs;  // up_blocks[0..n-1]
};

// Transformer2DModel with continuous input.
struct Transformer2DImpl : torch::nn::Module {
  Transformer2DImpl(int64_t channels, int64_t heads, int64_t layers, int64_t cross_dim, int64_t groups,
                    bool linear_projection, bool upcast_attention);
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& context, UNetCaptures* captures = nullptr);
  rass::nn::GroupNorm norm{nullptr};
  // Registered as proj_in / proj_out: Linear with use_linear_projection, else 1x1 Conv2d.
  LoraLinear proj_in_linear{nullptr}, proj_out_linear{nullptr};
  LoraConv2d proj_in_conv{nullptr}, proj_out_conv{nullptr};
  torch::nn::ModuleList transformer_blocks;
  bool linear_projection;
};
TORCH_MODULE(Transformer2D);

// One level of the UNet: resnets, optional attentions, optional down/upsampler.
struct UNetBlockImpl : torch::nn::Module {
  torch::nn::ModuleList resnets, attentions{nullptr}, samplers{nullptr};
  bool up = false;
  bool gradient_checkpointing = false;  // UNet2DConditionImpl::set_gradient_checkpointing
  torch::Tensor forward_down(torch::Tensor h, const torch::Tensor& temb, const torch::Tensor& context,
                             std::vector<torch::Tensor>& skips, UNetCaptures* captures = nullptr);
  torch::Tensor forward_up(torch::Tensor h, const torch::Tensor& temb, const torch::Tensor& context,
                           std::vector<torch::Tensor>& skips, c10::optional<std::vector<int64_t>> upsample_size,
                           UNetCaptures* captures = nullptr);
};
TORCH_MODULE(UNetBlock);

struct UNet2DConditionImpl : torch::nn::Module {
  explicit UNet2DConditionImpl(const UNetConfig& c);
  // sample [B, C, H, W], timesteps [B] (or one value), context [B, L, cross_attention_dim].
  // With `captures`, also records what it asks for there (see UNetCaptures).
  torch::Tensor forward(const torch::Tensor& sample, const torch::Tensor& timesteps, const torch::Tensor& context,
                        UNetCaptures* captures = nullptr);

  // diffusers' enable_gradient_checkpointing: every resnet and attention
  // block of the down, mid and up blocks recomputed in the backward pass
  // (nn/activation_checkpoint.hpp) while grad mode is on; the attention maps
  // `captures` records are outputs of their block's checkpoint (they keep
  // their graph through its replay).
  void set_gradient_checkpointing(bool on);
  bool gradient_checkpointing = false;

  UNetConfig config;
  LoraConv2d conv_in{nullptr}, conv_out{nullptr};
  torch::nn::ModuleList down_blocks, up_blocks;
  rass::nn::GroupNorm conv_norm_out{nullptr};
  std::shared_ptr<torch::nn::Module> time_embedding;  // linear_1, linear_2
  LoraLinear time_linear_1{nullptr}, time_linear_2{nullptr};
  std::shared_ptr<torch::nn::Module> mid_block;  // resnets, attentions
  torch::nn::ModuleList mid_resnets{nullptr}, mid_attentions{nullptr};
};
TORCH_MODULE(UNet2DCondition);

// Sinusoidal timestep embedding (diffusers get_timestep_embedding).
torch::Tensor timestep_embedding(const torch::Tensor& timesteps, int64_t dim, bool flip_sin_to_cos, double freq_shift,
                                 double max_period = 10000);

}  // namespace rass::nn
