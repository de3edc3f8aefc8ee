// ResShift's UNetModelSwin (models/unet.py, models/swin_transformer.py of
// zsyOAOA/ResShift; the same file in SinSR and SAMSR, seed 002): a
// guided-diffusion UNet whose attention is a Swin transformer layer, run on
// the 3-channel latent of a VQ-f4 autoencoder with the low-resolution image
// concatenated to its input. Module names equal the released checkpoints'
// keys (time_embed.*, input_blocks.N.M.*, middle_block.*, output_blocks.*,
// out.*), so a converted checkpoint loads with no renaming table; the Swin
// blocks' derived buffers (relative_position_index, attn_mask) are not
// weights: scripts/convert_samsr.py drops them and they are computed here.
//
// Details easy to miss, all as the reference computes them:
// - timestep embedding [cos, sin] (guided diffusion's order) of the step
//   index itself (0..T-1);
// - GroupNorm32 (32 groups, eps 1e-5) computed in float32 whatever the dtype;
// - the Swin layer has no residual around it (patch_embed 1x1 conv, blocks,
//   patch_unembed 1x1 conv); its norms are GroupNorm32 on [B, C, H, W], its
//   MLP 1x1 convolutions;
// - a block's window and shift come from the configured image_size of its
//   level (window = min(size, window_size) and no shift when the level is not
//   larger than the window); the shifted windows' mask is recomputed for the
//   input's size every call (the reference compares a list to a tuple, so its
//   cached mask is never used), and it is the reference's mask: its slices
//   index the [1, 1, H, W] array's second and third dimensions and the
//   windows are flattened transposed, so it separates rows of the image,
//   seen through each window's columns. The released models were trained
//   with it.
#pragma once
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <torch/nn/module.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/normalization.h>

#include "rass/nn/linear.hpp"

namespace rass::nn {

struct ResShiftUNetConfig {
  int64_t image_size = 64;  // the latent size the Swin windows were laid out for
  int64_t in_channels = 6;  // latent (3) + low-resolution image (3)
  int64_t model_channels = 160, out_channels = 3;
  std::vector<int64_t> channel_mult{1, 2, 2, 4};
  std::vector<int64_t> num_res_blocks{2, 2, 2, 2};
  std::vector<int64_t> attention_resolutions{64, 32, 16, 8};
  bool conv_resample = true, use_scale_shift_norm = true, resblock_updown = false;
  int64_t num_heads = 1, num_head_channels = 32;  // heads = swin_embed_dim / num_head_channels when > 0
  int64_t swin_depth = 2, swin_embed_dim = 192, window_size = 8;
  double mlp_ratio = 4;
  bool patch_norm = false;
  int64_t swin_heads() const { return num_head_channels > 0 ? swin_embed_dim / num_head_channels : num_heads; }
};

// basic_ops.py GroupNorm32: GroupNorm(32, C) in float32, back to x's dtype.
struct GroupNorm32Impl : torch::nn::GroupNormImpl {
  explicit GroupNorm32Impl(int64_t channels, double eps = 1e-5);
  torch::Tensor forward(const torch::Tensor& x);
};
TORCH_MODULE(GroupNorm32);

// guided diffusion's ResBlock: in_layers (GN, SiLU, conv), emb_layers (SiLU,
// linear), out_layers (GN, SiLU, dropout, conv), skip_connection.
struct ResShiftResBlockImpl : torch::nn::Module {
  ResShiftResBlockImpl(int64_t channels, int64_t emb_channels, int64_t out_channels, bool scale_shift, int updown);
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& emb);
  GroupNorm32 in_norm{nullptr}, out_norm{nullptr};
  torch::nn::Conv2d in_conv{nullptr}, out_conv{nullptr}, skip{nullptr};
  Linear emb_linear{nullptr};
  bool scale_shift;
  int updown;  // 0, 1 up, -1 down (resblock_updown)
};
TORCH_MODULE(ResShiftResBlock);

// swin_transformer.py WindowAttention: [windows, N, C] tokens with a learned
// relative-position bias and an optional additive mask [nW, N, N].
struct SwinWindowAttentionImpl : torch::nn::Module {
  SwinWindowAttentionImpl(int64_t dim, int64_t window, int64_t heads);
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& mask);
  torch::Tensor relative_position_bias_table;
  torch::Tensor relative_position_index;  // not registered: derived (the converter drops it)
  Linear qkv{nullptr}, proj{nullptr};
  int64_t window, heads;
};
TORCH_MODULE(SwinWindowAttention);

// swin_transformer.py SwinTransformerBlock on [B, C, H, W].
struct SwinBlockImpl : torch::nn::Module {
  SwinBlockImpl(int64_t dim, int64_t level_size, int64_t heads, int64_t window, int64_t shift, double mlp_ratio);
  torch::Tensor forward(const torch::Tensor& x);
  GroupNorm32 norm1{nullptr}, norm2{nullptr};
  SwinWindowAttention attn{nullptr};
  torch::nn::Conv2d fc1{nullptr}, fc2{nullptr};  // mlp.fc1, mlp.fc2
  int64_t window, shift;
};
TORCH_MODULE(SwinBlock);

// The reference's attention mask of shifted windows for an H x W input
// ([nW, N, N], 0 or -100), as calculate_mask computes it (see the top).
torch::Tensor swin_shift_mask(int64_t height, int64_t width, int64_t window, int64_t shift);

// swin_transformer.py BasicLayer: patch_embed.proj (1x1), blocks, patch_unembed.proj (1x1).
struct SwinLayerImpl : torch::nn::Module {
  SwinLayerImpl(int64_t in_chans, const ResShiftUNetConfig& c, int64_t level_size);
  torch::Tensor forward(const torch::Tensor& x);
  torch::nn::Conv2d embed{nullptr}, unembed{nullptr};
  GroupNorm32 embed_norm{nullptr}, unembed_norm{nullptr};  // patch_norm only
  torch::nn::ModuleList blocks{nullptr};
};
TORCH_MODULE(SwinLayer);

// One TimestepEmbedSequential: its children are named "0", "1", ... as in
// the checkpoint, each a conv, ResBlock, Swin layer, or up/down sampler.
struct ResShiftSequentialImpl : torch::nn::Module {
  enum class Kind { conv, resblock, swin, down, up };
  void add(Kind kind, std::shared_ptr<torch::nn::Module> m);
  torch::Tensor forward(torch::Tensor x, const torch::Tensor& emb);
  std::vector<std::pair<Kind, std::shared_ptr<torch::nn::Module>>> items;
};
TORCH_MODULE(ResShiftSequential);

struct ResShiftUNetImpl : torch::nn::Module {
  explicit ResShiftUNetImpl(const ResShiftUNetConfig& c);
  // x: [B, 3, h, w] (already divided by the input scale), t: [B] step
  // indices, lq: [B, 3, h, w] the low-resolution image in [-1, 1]; h and w
  // multiples of window_size * 2^(levels - 1).
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& t, const torch::Tensor& lq);
  ResShiftUNetConfig config;
  torch::nn::Linear time0{nullptr}, time2{nullptr};  // time_embed.0, time_embed.2
  torch::nn::ModuleList input_blocks{nullptr}, output_blocks{nullptr};
  ResShiftSequential middle_block{nullptr};
  GroupNorm32 out_norm{nullptr};  // out.0
  torch::nn::Conv2d out_conv{nullptr};  // out.2
  // The spatial multiple inputs need: window_size << (levels - 1).
  int64_t size_multiple() const;
  // After to(fp16 or bf16): time_embed, the out head and every GroupNorm32
  // back to float32, as the reference's convert_to_fp16 leaves them (the
  // blocks then run in the dtype, the embedding is cast to it, the head
  // runs float32).
  void keep_float32_parts();
};
TORCH_MODULE(ResShiftUNet);

// basic_ops.py timestep_embedding: [cos, sin] of t * 10000^(-i/half).
torch::Tensor resshift_timestep_embedding(const torch::Tensor& t, int64_t dim);

}  // namespace rass::nn
