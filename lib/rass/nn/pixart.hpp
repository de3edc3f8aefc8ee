// DreamClear's denoiser (seed 003; shallowdream204/DreamClear,
// diffusion/model/nets/PixArtMS.py, PixArt_blocks.py, pixart_controlnet.py):
// a PixArt-alpha multi-scale DiT (PixArtMS, "base_model") steered by
// ControlFormer — two trainable copies of its first copy_blocks_num blocks,
// one fed the LQ latent ("controlnet_lq"), one the SwinIR pre-restored
// latent ("controlnet_pre") — whose outputs enter the base stream through a
// cross attention between the branches ("cross_de") and the Mixture of
// Adaptive Modulators ("am_lq": experts weighted per token by a gate on the
// cross attention's degradation map; "am_pre": one modulator).
//
// Module names equal the released checkpoint's keys (DreamClear-1024.pth:
// base_model.blocks.N.attn.qkv.weight, controlnet_lq.N.copied_block...,
// am_lq.N.experts.K.proj_mul.weight, cross_de.N.de_proj.weight, ...), so
// scripts/convert_dreamclear.py loads it with no renaming table; the one
// derived buffer, base_model.pos_embed, is dropped there and computed here.
//
// Details easy to miss, all as the reference computes them:
// - positions: 2-D sin-cos of the token grid scaled by base_size / grid and
//   divided by lewei_scale (as numpy: float32 then float64), the first half of
//   the channels from the column, the second from the row; added to the
//   three x embeddings but not to the two condition embeddings;
// - the condition t = t_embedder(step) + [csize_embedder(h, w), ar_embedder(ar)]
//   (frequencies [cos, sin]); t_block(t) gives each block's six modulations
//   added to its scale_shift_table; the final layer modulates with t itself;
// - the caption's tokens: only those the mask keeps (a caption mask of batch
//   1 is repeated to the batch, so the unconditional half of a guided batch
//   uses the null embedding's first tokens only); without a mask, all of its
//   own sample's tokens;
// - cross_de's attention has no mask: the reference flattens the batch into
//   one sequence, so the halves of a guided (cond, uncond) pair attend to
//   each other's tokens; `de_group` says how many samples form one such
//   sequence (0: the whole batch, the reference's call);
// - the ControlFormer branches take (x_embedder_lq(x) + c_lq) at block 0 and
//   their own output after; base block i, then x += cross_de's output, then
//   x = (1 + g_pre) x + b_pre, then x = (1 + g_lq) x + b_lq;
// - LayerNorms without affine (eps 1e-6) in blocks and final layer, with
//   affine (eps 1e-5) in cross_de; GELU tanh everywhere.
#pragma once
#include <vector>

#include <torch/nn/module.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/normalization.h>

#include "rass/nn/linear.hpp"

namespace rass::nn {

struct PixArtConfig {
  int64_t hidden_size = 1152, depth = 28, num_heads = 16, patch_size = 2, in_channels = 4;
  bool learn_sigma = true;
  double mlp_ratio = 4.0;
  int64_t caption_channels = 4096, model_max_length = 120;
  double lewei_scale = 2.0;
  int64_t base_size = 64;  // input_size // patch_size of the model's training size (1024 px: 64)
  int64_t copy_blocks_num = 28, num_experts = 3;
  int64_t out_channels() const { return learn_sigma ? in_channels * 2 : in_channels; }
};

// Children named "0", "1", ... holding Linear layers at the given indices
// (nn.Sequential's names with activations in between: mlp.0 / mlp.2).
struct IndexedLinearsImpl : torch::nn::Module {
  IndexedLinearsImpl(const std::vector<int>& indices, const std::vector<std::pair<int64_t, int64_t>>& shapes);
  std::vector<Linear> layers;
};
TORCH_MODULE(IndexedLinears);

// PatchEmbed: proj conv (kernel = stride = patch), then [B, tokens, C].
struct DitPatchEmbedImpl : torch::nn::Module {
  DitPatchEmbedImpl(int64_t in_channels, int64_t hidden, int64_t patch);
  torch::Tensor forward(const torch::Tensor& x);
  torch::nn::Conv2d proj{nullptr};
};
TORCH_MODULE(DitPatchEmbed);

// TimestepEmbedder (mlp.0, SiLU, mlp.2) of 256 frequencies [cos, sin];
// SizeEmbedder is the same module run on each of a sample's values, the
// embeddings concatenated.
struct DitTimestepEmbedderImpl : torch::nn::Module {
  explicit DitTimestepEmbedderImpl(int64_t hidden, int64_t frequencies = 256);
  torch::Tensor forward(const torch::Tensor& t);                 // [N] -> [N, hidden]
  torch::Tensor forward_sizes(const torch::Tensor& s, int64_t batch);  // [b, d] -> [batch, d * hidden]
  IndexedLinears mlp{nullptr};
  int64_t frequencies;
};
TORCH_MODULE(DitTimestepEmbedder);

// timm Mlp: fc1, GELU (tanh), fc2.
struct DitMlpImpl : torch::nn::Module {
  DitMlpImpl(int64_t in, int64_t hidden, int64_t out);
  torch::Tensor forward(const torch::Tensor& x);
  Linear fc1{nullptr}, fc2{nullptr};
};
TORCH_MODULE(DitMlp);

// Attention over [B, N, C] with qkv / proj (timm Attention's names).
struct DitSelfAttentionImpl : torch::nn::Module {
  DitSelfAttentionImpl(int64_t dim, int64_t heads);
  torch::Tensor forward(const torch::Tensor& x);
  Linear qkv{nullptr}, proj{nullptr};
  int64_t heads;
};
TORCH_MODULE(DitSelfAttention);

// A caption's tokens as the blocks' cross attention sees them: the projected
// tokens [B, L, C] and which of them each sample's queries attend to
// (`keep` [B, L] bool; undefined = all of its own sample's).
struct DitCaption {
  torch::Tensor tokens, keep;
};

// MultiHeadCrossAttention: q_linear(x), kv_linear(caption), proj.
struct DitCrossAttentionImpl : torch::nn::Module {
  DitCrossAttentionImpl(int64_t dim, int64_t heads);
  torch::Tensor forward(const torch::Tensor& x, const DitCaption& y);
  Linear q_linear{nullptr}, kv_linear{nullptr}, proj{nullptr};
  int64_t heads;
};
TORCH_MODULE(DitCrossAttention);

// PixArtMSBlock: adaLN-single (scale_shift_table + t0), self attention,
// cross attention to the caption, MLP.
struct PixArtBlockImpl : torch::nn::Module {
  PixArtBlockImpl(int64_t hidden, int64_t heads, double mlp_ratio);
  torch::Tensor forward(const torch::Tensor& x, const DitCaption& y, const torch::Tensor& t0);
  torch::Tensor scale_shift_table;
  DitSelfAttention attn{nullptr};
  DitCrossAttention cross_attn{nullptr};
  DitMlp mlp{nullptr};
  int64_t hidden;
};
TORCH_MODULE(PixArtBlock);

// T2IFinalLayer: norm, modulation by scale_shift_table + t, linear.
struct DitFinalLayerImpl : torch::nn::Module {
  DitFinalLayerImpl(int64_t hidden, int64_t patch, int64_t out_channels);
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& t);
  torch::Tensor scale_shift_table;
  Linear linear{nullptr};
};
TORCH_MODULE(DitFinalLayer);

// CaptionEmbedder: y_proj (Mlp) of T5 features; y_embedding [L, C] is the
// learned null caption (classifier-free guidance's unconditional input).
struct DitCaptionEmbedderImpl : torch::nn::Module {
  DitCaptionEmbedderImpl(int64_t caption_channels, int64_t hidden, int64_t tokens);
  DitMlp y_proj{nullptr};
  torch::Tensor y_embedding;
};
TORCH_MODULE(DitCaptionEmbedder);

// PixArtMS's modules (the forward is DreamClearDiT's: the reference's
// wrapper runs the base's parts itself).
struct PixArtMSImpl : torch::nn::Module {
  explicit PixArtMSImpl(const PixArtConfig& c);
  DitPatchEmbed x_embedder{nullptr};
  DitTimestepEmbedder t_embedder{nullptr}, csize_embedder{nullptr}, ar_embedder{nullptr};
  IndexedLinears t_block{nullptr};  // t_block.1 (after SiLU)
  DitCaptionEmbedder y_embedder{nullptr};
  torch::nn::ModuleList blocks{nullptr};
  DitFinalLayer final_layer{nullptr};
};
TORCH_MODULE(PixArtMS);

// ControlT2IDitBlockHalfSR: a copy of a base block.
struct DitControlBlockImpl : torch::nn::Module {
  DitControlBlockImpl(int64_t hidden, int64_t heads, double mlp_ratio);
  PixArtBlock copied_block{nullptr};
};
TORCH_MODULE(DitControlBlock);

// Adaptive_Modulator: shared_proj, GELU tanh, proj_mul (gamma) / proj_add (beta).
struct AdaptiveModulatorImpl : torch::nn::Module {
  explicit AdaptiveModulatorImpl(int64_t hidden);
  std::pair<torch::Tensor, torch::Tensor> forward(const torch::Tensor& c);
  Linear shared_proj{nullptr}, proj_add{nullptr}, proj_mul{nullptr};
};
TORCH_MODULE(AdaptiveModulator);

// Adaptive_Modulator_MoE: experts mixed per token by softmax(gate(de_map)),
// gate = gate.0, GELU tanh, gate.2.
struct AdaptiveModulatorMoEImpl : torch::nn::Module {
  AdaptiveModulatorMoEImpl(int64_t hidden, int64_t experts);
  std::pair<torch::Tensor, torch::Tensor> forward(const torch::Tensor& c, const torch::Tensor& de_map);
  torch::nn::ModuleList experts{nullptr};
  IndexedLinears gate{nullptr};
};
TORCH_MODULE(AdaptiveModulatorMoE);

// Zero_MultiHeadCrossAttentionDe: queries from norm1(c_lq), keys and values
// from norm2(c_pre); returns (proj(a), de_proj(a)) of the attention output a.
struct DitCrossDeImpl : torch::nn::Module {
  DitCrossDeImpl(int64_t dim, int64_t heads);
  std::pair<torch::Tensor, torch::Tensor> forward(const torch::Tensor& c_lq, const torch::Tensor& c_pre,
                                                  int64_t group);
  Linear q_linear{nullptr}, kv_linear{nullptr}, proj{nullptr}, de_proj{nullptr};
  torch::nn::LayerNorm norm1{nullptr}, norm2{nullptr};
  int64_t heads;
};
TORCH_MODULE(DitCrossDe);

// The inputs of one denoiser call.
struct DreamClearDitInput {
  torch::Tensor x;          // [B, 4, h, w] latent
  torch::Tensor timestep;   // [B] float: the training-schedule step (0..999)
  torch::Tensor caption;    // [B, 1, L, caption_channels] T5 features (or the null embedding)
  torch::Tensor mask;       // [Bm, L] (Bm divides B; repeated): tokens kept, at least one; undefined = all
  torch::Tensor img_hw;     // [Bm, 2] and
  torch::Tensor aspect;     // [Bm, 1]: the size conditions (the reference passes 1024, 1024 and 1)
  torch::Tensor c_lq, c_pre;  // [1 or B, 4, h, w] latents of the LQ and pre-restored images
  int64_t de_group = 0;     // samples per cross_de sequence (0: the whole batch)
};

struct DreamClearDiTImpl : torch::nn::Module {
  explicit DreamClearDiTImpl(const PixArtConfig& c);
  // [B, out_channels, h, w]: eps (in_channels) then the variance values.
  torch::Tensor forward(const DreamClearDitInput& in);
  // forward_with_cfg for one image: x [1, 4, h, w]; the caption is
  // [1, 1, L, C] and the null embedding fills the second half; returns the
  // first half's output [1, out, h, w] with guidance on the first `guided`
  // channels only (the reference guides eps[:, :3] of 4 latent channels).
  torch::Tensor forward_cfg(const DreamClearDitInput& in, double cfg_scale, int64_t guided_channels = 3);
  // The 2-D sin-cos positions [1, h*w, hidden] of an h x w token grid.
  torch::Tensor positions(int64_t h, int64_t w) const;

  PixArtConfig config;
  PixArtMS base_model{nullptr};
  torch::nn::ModuleList controlnet_lq{nullptr}, controlnet_pre{nullptr}, am_lq{nullptr}, am_pre{nullptr},
      cross_de{nullptr};
  DitPatchEmbed c_embedder_lq{nullptr}, c_embedder_pre{nullptr}, x_embedder_lq{nullptr}, x_embedder_pre{nullptr};
};
TORCH_MODULE(DreamClearDiT);

}  // namespace rass::nn
