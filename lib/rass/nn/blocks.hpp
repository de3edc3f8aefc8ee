// Building blocks shared by the VAE and the UNet, with the diffusers module
// and parameter names (diffusers v0.25 models/resnet.py, attention_processor.py),
// so a diffusers state dict loads with no renaming table.
#pragma once
#include <string>
#include <vector>

#include <torch/nn/module.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/normalization.h>

#include "rass/nn/group_norm.hpp"
#include "rass/nn/lora.hpp"

namespace rass::nn {

// Tiled VAE support (model/tiled_vae.hpp): a per-thread replacement of the
// GroupNorm calls of these blocks and of the VAE (ResnetBlock2D norm1/norm2,
// the Attention group_norm, the VAE's conv_norm_out), so statistics can be
// gathered over all tiles of an image. Without a hook (the default) GroupNorm
// runs as usual; the hook pointer is thread-local, so other threads sharing
// the modules are unaffected.
struct GroupNormHook {
  virtual ~GroupNormHook() = default;
  // x is [B, C, H, W]; returns GroupNorm(x) with the module's affine parameters.
  virtual torch::Tensor apply(const torch::nn::GroupNormImpl& gn, const torch::Tensor& x) = 0;
};
// Installs `hook` for the calling thread for the scope's lifetime.
struct GroupNormHookScope {
  explicit GroupNormHookScope(GroupNormHook* hook);
  ~GroupNormHookScope();
  GroupNormHookScope(const GroupNormHookScope&) = delete;
  GroupNormHookScope& operator=(const GroupNormHookScope&) = delete;
  GroupNormHook* previous;
};
// gn(x), or the calling thread's hook when one is installed (x: [B, C, H, W]).
torch::Tensor group_norm(rass::nn::GroupNorm& gn, const torch::Tensor& x);
// SiLU(group_norm(gn, x)): with no hook installed, gn->forward_silu (one
// fused kernel on CUDA); with one, the hook's norm, then SiLU in place.
torch::Tensor group_norm_silu(rass::nn::GroupNorm& gn, const torch::Tensor& x);

// SiLU of a tensor nothing else holds (a norm's fresh output), in place when
// no gradient is recorded: one activation-sized tensor fewer at the resnets'
// peak (2 GiB at a 2048 px VAE decoder's last level in bf16). The same values.
torch::Tensor silu_fresh(torch::Tensor t);

// The tensors a block holds across its GroupNorm calls besides the norm's
// input: a resnet's input, kept for the skip while norm2 runs. Listed for the
// calling thread while a GroupNorm hook is installed (nothing otherwise), so
// a hook that waits (the tiled VAE's, which waits for the other tiles'
// statistics) knows what its tile holds and can move it off the device.
struct KeptTensor {
  explicit KeptTensor(const torch::Tensor& t);
  ~KeptTensor();
  KeptTensor(const KeptTensor&) = delete;
  KeptTensor& operator=(const KeptTensor&) = delete;
  bool listed;
};
// The calling thread's kept tensors, innermost last.
const std::vector<const torch::Tensor*>& kept_tensors();

// ResnetBlock2D (time_embedding_norm "default"): norm1, conv1, [time_emb_proj],
// norm2, conv2, [conv_shortcut 1x1 when channels change]; SiLU; (x + h) / scale.
struct ResnetBlock2DImpl : torch::nn::Module {
  ResnetBlock2DImpl(int64_t in, int64_t out, int64_t temb_channels, int64_t groups, double eps,
                    double output_scale_factor = 1.0);
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& temb = {});
  rass::nn::GroupNorm norm1{nullptr}, norm2{nullptr};
  LoraConv2d conv1{nullptr}, conv2{nullptr}, conv_shortcut{nullptr};
  LoraLinear time_emb_proj{nullptr};
  double output_scale_factor;
};
TORCH_MODULE(ResnetBlock2D);

// Downsample2D with a 3x3 stride-2 conv named "conv"; padding 0 means the
// reference's asymmetric (0, 1, 0, 1) zero pad first (the VAE encoder).
struct Downsample2DImpl : torch::nn::Module {
  Downsample2DImpl(int64_t channels, int64_t out, int64_t padding);
  torch::Tensor forward(const torch::Tensor& x);
  LoraConv2d conv{nullptr};
  int64_t padding;
};
TORCH_MODULE(Downsample2D);

// Upsample2D: nearest x2, then a 3x3 conv named "conv" (or to an explicit size);
// in inference one step (upsample_conv.hpp).
struct Upsample2DImpl : torch::nn::Module {
  Upsample2DImpl(int64_t channels, int64_t out);
  torch::Tensor forward(const torch::Tensor& x, c10::optional<std::vector<int64_t>> size = c10::nullopt);
  LoraConv2d conv{nullptr};
};
TORCH_MODULE(Upsample2D);

// Attention (diffusers Attention with the default processor): optional
// group_norm over channels for 4-D input, to_q/to_k/to_v, to_out.0, optional
// residual connection and output rescale. Softmax in float32 when
// upcast_softmax (the VAE sets it). With `probs`, the call also returns the
// attention probabilities [batch*heads, queries, keys] there (part of the
// autograd graph, so a loss on them, such as SCL, trains the layers; the
// reference's math path is used then). The module keeps no per-call state.
struct AttentionImpl : torch::nn::Module {
  AttentionImpl(int64_t query_dim, int64_t cross_attention_dim, int64_t heads, int64_t dim_head, bool bias,
                int64_t norm_groups, double norm_eps, bool residual_connection, bool upcast_softmax,
                bool out_bias = true);
  torch::Tensor forward(const torch::Tensor& hidden, const torch::Tensor& encoder_hidden = {},
                        torch::Tensor* probs = nullptr);
  rass::nn::GroupNorm group_norm{nullptr};
  LoraLinear to_q{nullptr}, to_k{nullptr}, to_v{nullptr};
  torch::nn::ModuleList to_out;
  int64_t heads, dim_head;
  bool residual_connection, upcast_softmax;
  bool upcast_attention = false;  // q k^T in float32 (SD 2.1-768's config)
  // The module's path in the UNet that owns it (set by the UNet's
  // constructor; names captured probabilities), e.g.
  // "down_blocks.0.attentions.0.transformer_blocks.0.attn2".
  std::string path;

 private:
  // softmax(q k^T / sqrt(d)) v on [b*heads, n, d], the reference's processor.
  torch::Tensor attention_math(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                               torch::Tensor* probs) const;
};
TORCH_MODULE(Attention);

// The most bytes of float32 scores the math path (LibTorch 1.13, or captured
// probabilities) holds at once: above it, without probabilities to return,
// the queries go in chunks. Default 256 MiB. Tests set a small one.
int64_t attention_scores_budget();
void set_attention_scores_budget(int64_t bytes);

}  // namespace rass::nn
