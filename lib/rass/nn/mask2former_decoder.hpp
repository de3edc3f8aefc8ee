// Mask2Former's MultiScaleMaskedTransformerDecoder
// (transformer_decoder/mask2former_transformer_decoder.py) with the official
// names: transformer_{self,cross}_attention_layers.{i}.{self_attn |
// multihead_attn}.{in_proj_weight, in_proj_bias, out_proj.*} and .norm,
// transformer_ffn_layers.{i}.{linear1, linear2, norm}, decoder_norm,
// query_feat, query_embed, level_embed (Embeddings: .weight), input_proj.{i}
// (a detectron2 conv, or an empty Sequential when the channels already match),
// class_embed, mask_embed.layers.{0,1,2}. Internally batch-first ([B, L, C]);
// the reference's sequence-first layout only moves the same numbers around.
#pragma once
#include <array>
#include <vector>

#include <torch/nn/module.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/embedding.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/modules/normalization.h>
#include <torch/nn/pimpl.h>

#include "rass/nn/linear.hpp"
#include "rass/nn/mask_former_head.hpp"

namespace rass::nn {

// torch.nn.MultiheadAttention's parameters and its math (scaled q, softmax,
// a boolean mask where true = may not attend), batch-first, no dropout.
struct MultiheadAttentionImpl : torch::nn::Module {
  MultiheadAttentionImpl(int64_t embed_dim, int64_t num_heads);
  // q [B, Lq, E], k / v [B, Lk, E]; mask: undefined or bool [B, Lq, Lk]
  // (shared by every head).
  torch::Tensor forward(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                        const torch::Tensor& mask = {});
  int64_t embed_dim, num_heads;
  torch::Tensor in_proj_weight, in_proj_bias;
  rass::nn::Linear out_proj{nullptr};
};
TORCH_MODULE(MultiheadAttention);

// SelfAttentionLayer / CrossAttentionLayer: attention + residual + LayerNorm
// (post-norm, or pre-norm when normalize_before).
struct AttentionLayerImpl : torch::nn::Module {
  AttentionLayerImpl(const char* attn_name, int64_t d_model, int64_t nhead, bool normalize_before);
  // Self-attention: memory undefined (keys/values are tgt). pos / query_pos
  // are added to keys / queries, never to values.
  torch::Tensor forward(const torch::Tensor& tgt, const torch::Tensor& memory, const torch::Tensor& mask,
                        const torch::Tensor& pos, const torch::Tensor& query_pos);
  MultiheadAttention attn{nullptr};
  torch::nn::LayerNorm norm{nullptr};
  bool normalize_before;
};
TORCH_MODULE(AttentionLayer);

struct FFNLayerImpl : torch::nn::Module {
  FFNLayerImpl(int64_t d_model, int64_t dim_feedforward, bool normalize_before);
  torch::Tensor forward(const torch::Tensor& x);
  rass::nn::Linear linear1{nullptr}, linear2{nullptr};
  torch::nn::LayerNorm norm{nullptr};
  bool normalize_before;
};
TORCH_MODULE(FFNLayer);

// Mask2Former's MLP: Linear layers with ReLU between them.
struct MLPImpl : torch::nn::Module {
  MLPImpl(int64_t input_dim, int64_t hidden_dim, int64_t output_dim, int64_t num_layers);
  torch::Tensor forward(torch::Tensor x);
  torch::nn::ModuleList layers;
};
TORCH_MODULE(MLP);

struct DecoderPrediction {
  torch::Tensor logits;     // [B, Q, K+1]
  torch::Tensor masks;      // [B, Q, H, W] (mask features' size)
  torch::Tensor attn_mask;  // bool [B, Q, h*w] at the next level's size; true = masked
};

class MultiScaleMaskedTransformerDecoderImpl : public torch::nn::Module {
 public:
  explicit MultiScaleMaskedTransformerDecoderImpl(const MaskFormerHeadConfig& c);
  // x: 3 levels [B, conv_dim, h, w] (coarsest first); mask_features [B, mask_dim, H, W].
  MaskFormerOutput forward(const std::vector<torch::Tensor>& x, const torch::Tensor& mask_features);
  DecoderPrediction forward_prediction_heads(const torch::Tensor& output, const torch::Tensor& mask_features,
                                             const std::array<int64_t, 2>& attn_mask_size);

  torch::nn::ModuleList transformer_self_attention_layers, transformer_cross_attention_layers,
      transformer_ffn_layers, input_proj;
  torch::nn::LayerNorm decoder_norm{nullptr};
  torch::nn::Embedding query_feat{nullptr}, query_embed{nullptr}, level_embed{nullptr};
  rass::nn::Linear class_embed{nullptr};
  MLP mask_embed{nullptr};

 private:
  MaskFormerHeadConfig config_;
  bool project_input_ = false;
  static constexpr int64_t kLevels = 3;  // "we always use 3 scales"
};
TORCH_MODULE(MultiScaleMaskedTransformerDecoder);

}  // namespace rass::nn
