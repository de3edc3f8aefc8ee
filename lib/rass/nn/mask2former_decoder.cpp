#include "rass/nn/mask2former_decoder.hpp"

#include <cmath>
#include <limits>
#include <string>

#include <torch/nn/init.h>
#include <torch/nn/modules/container/sequential.h>
#include <torch/torch.h>

#include "rass/core/error.hpp"
#include "rass/nn/d2_conv.hpp"
#include "rass/nn/linear.hpp"
#include "rass/nn/position_encoding.hpp"

namespace rass::nn {

MultiheadAttentionImpl::MultiheadAttentionImpl(int64_t e, int64_t h) : embed_dim(e), num_heads(h) {
  in_proj_weight = register_parameter("in_proj_weight", torch::empty({3 * e, e}));
  in_proj_bias = register_parameter("in_proj_bias", torch::zeros({3 * e}));
  out_proj = register_module("out_proj", rass::nn::Linear(e, e));
  torch::NoGradGuard no_grad;
  torch::nn::init::xavier_uniform_(in_proj_weight);
  out_proj->bias.zero_();
}

torch::Tensor MultiheadAttentionImpl::forward(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                                              const torch::Tensor& mask) {
  const int64_t B = q.size(0), Lq = q.size(1), Lk = k.size(1), d = embed_dim / num_heads;
  const auto w = in_proj_weight.chunk(3, 0);
  const auto b = in_proj_bias.chunk(3, 0);
  auto heads = [&](const torch::Tensor& x, int i, int64_t L) {
    return torch::linear(x, w[i], b[i]).view({B, L, num_heads, d}).transpose(1, 2);  // [B, h, L, d]
  };
  torch::Tensor o;  // [B, h, Lq, d]
#if TORCH_VERSION_MAJOR >= 2
  // LibTorch 2.x: one fused kernel, as PyTorch's nn.MultiheadAttention takes
  // in inference (scaled_dot_product_attention; a boolean mask there marks
  // the keys that take part, the opposite of this one). The callers never
  // pass a row masked everywhere (it would be NaN either way).
  o = at::scaled_dot_product_attention(heads(q, 0, Lq), heads(k, 1, Lk), heads(v, 2, Lk),
                                       mask.defined() ? c10::optional<torch::Tensor>(mask.logical_not().unsqueeze(1))
                                                      : c10::nullopt);
#else
  // As F.multi_head_attention_forward: q is scaled before the product, the
  // boolean mask becomes -inf in the scores.
  const torch::Tensor qh = heads(q, 0, Lq) * (1.0 / std::sqrt(static_cast<double>(d)));
  torch::Tensor scores = torch::matmul(qh, heads(k, 1, Lk).transpose(-2, -1));  // [B, h, Lq, Lk]
  if (mask.defined()) scores = scores.masked_fill(mask.unsqueeze(1), -std::numeric_limits<float>::infinity());
  o = torch::matmul(torch::softmax(scores, -1), heads(v, 2, Lk));
#endif
  return out_proj(o.transpose(1, 2).reshape({B, Lq, embed_dim}));
}

AttentionLayerImpl::AttentionLayerImpl(const char* attn_name, int64_t d_model, int64_t nhead, bool pre)
    : normalize_before(pre) {
  attn = register_module(attn_name, MultiheadAttention(d_model, nhead));
  norm = register_module("norm", torch::nn::LayerNorm(torch::nn::LayerNormOptions({d_model})));
  // The layers' _reset_parameters: xavier for every matrix.
  torch::NoGradGuard no_grad;
  for (auto& p : parameters())
    if (p.dim() > 1) torch::nn::init::xavier_uniform_(p);
}

torch::Tensor AttentionLayerImpl::forward(const torch::Tensor& tgt, const torch::Tensor& memory,
                                          const torch::Tensor& mask, const torch::Tensor& pos,
                                          const torch::Tensor& query_pos) {
  const torch::Tensor t = normalize_before ? norm(tgt) : tgt;
  const torch::Tensor q = t + query_pos;
  torch::Tensor out;
  if (memory.defined())
    out = attn(q, pos.defined() ? memory + pos : memory, memory, mask);
  else
    out = attn(q, q, t, mask);
  return normalize_before ? tgt + out : norm(tgt + out);
}

FFNLayerImpl::FFNLayerImpl(int64_t d_model, int64_t dim_feedforward, bool pre) : normalize_before(pre) {
  linear1 = register_module("linear1", rass::nn::Linear(d_model, dim_feedforward));
  linear2 = register_module("linear2", rass::nn::Linear(dim_feedforward, d_model));
  norm = register_module("norm", torch::nn::LayerNorm(torch::nn::LayerNormOptions({d_model})));
  torch::NoGradGuard no_grad;
  for (auto& p : parameters())
    if (p.dim() > 1) torch::nn::init::xavier_uniform_(p);
}

torch::Tensor FFNLayerImpl::forward(const torch::Tensor& x) {
  const torch::Tensor t = normalize_before ? norm(x) : x;
  const torch::Tensor y = x + linear2(torch::relu(linear1(t)));
  return normalize_before ? y : norm(y);
}

MLPImpl::MLPImpl(int64_t input_dim, int64_t hidden_dim, int64_t output_dim, int64_t num_layers) {
  layers = register_module("layers", torch::nn::ModuleList());
  for (int64_t i = 0; i < num_layers; ++i)
    layers->push_back(rass::nn::Linear(i == 0 ? input_dim : hidden_dim, i == num_layers - 1 ? output_dim : hidden_dim));
}

torch::Tensor MLPImpl::forward(torch::Tensor x) {
  const size_t n = layers->size();
  for (size_t i = 0; i < n; ++i) {
    x = layers[i]->as<rass::nn::LinearImpl>()->forward(x);
    if (i + 1 < n) x = torch::relu(x);
  }
  return x;
}

MultiScaleMaskedTransformerDecoderImpl::MultiScaleMaskedTransformerDecoderImpl(const MaskFormerHeadConfig& c)
    : config_(c) {
  transformer_self_attention_layers = register_module("transformer_self_attention_layers", torch::nn::ModuleList());
  transformer_cross_attention_layers = register_module("transformer_cross_attention_layers", torch::nn::ModuleList());
  transformer_ffn_layers = register_module("transformer_ffn_layers", torch::nn::ModuleList());
  // DEC_LAYERS counts the prediction from the bare queries too.
  for (int i = 0; i < c.dec_layers - 1; ++i) {
    transformer_self_attention_layers->push_back(AttentionLayer("self_attn", c.hidden_dim, c.nheads, c.pre_norm));
    transformer_cross_attention_layers->push_back(AttentionLayer("multihead_attn", c.hidden_dim, c.nheads, c.pre_norm));
    transformer_ffn_layers->push_back(FFNLayer(c.hidden_dim, c.dim_feedforward, c.pre_norm));
  }
  decoder_norm = register_module("decoder_norm", torch::nn::LayerNorm(torch::nn::LayerNormOptions({c.hidden_dim})));
  query_feat = register_module("query_feat", torch::nn::Embedding(c.num_queries, c.hidden_dim));
  query_embed = register_module("query_embed", torch::nn::Embedding(c.num_queries, c.hidden_dim));
  level_embed = register_module("level_embed", torch::nn::Embedding(kLevels, c.hidden_dim));
  input_proj = register_module("input_proj", torch::nn::ModuleList());
  // The predictor's input is the pixel decoder's conv_dim features.
  project_input_ = c.conv_dim != c.hidden_dim || c.enforce_input_project;
  for (int64_t i = 0; i < kLevels; ++i) {
    if (project_input_)
      input_proj->push_back(D2Conv2d(D2Conv2dOptions{c.conv_dim, c.hidden_dim}));
    else
      input_proj->push_back(torch::nn::Sequential());  // no parameters, keeps the indices
  }
  class_embed = register_module("class_embed", rass::nn::Linear(c.hidden_dim, c.num_classes + 1));
  mask_embed = register_module("mask_embed", MLP(c.hidden_dim, c.hidden_dim, c.mask_dim, 3));
}

DecoderPrediction MultiScaleMaskedTransformerDecoderImpl::forward_prediction_heads(
    const torch::Tensor& output, const torch::Tensor& mask_features, const std::array<int64_t, 2>& size) {
  DecoderPrediction p;
  const torch::Tensor out = decoder_norm(output);
  p.logits = class_embed(out);
  const torch::Tensor me = mask_embed(out);  // [B, Q, mask_dim]
  const int64_t B = mask_features.size(0), H = mask_features.size(2), W = mask_features.size(3);
  p.masks = torch::bmm(me, mask_features.flatten(2)).view({B, me.size(1), H, W});
  // Where the previous prediction says "not this query" (sigmoid < 0.5),
  // cross-attention may not look; computed at the next level's size.
  const torch::Tensor m = torch::upsample_bilinear2d(p.masks, {size[0], size[1]}, false);
  p.attn_mask = (m.sigmoid().flatten(2) < 0.5).detach();
  return p;
}

MaskFormerOutput MultiScaleMaskedTransformerDecoderImpl::forward(const std::vector<torch::Tensor>& levels,
                                                                 const torch::Tensor& mask_features_in) {
  // Inputs take this module's dtype (the pixel decoder may run in fp32).
  const auto dtype = query_feat->weight.scalar_type();
  std::vector<torch::Tensor> x;
  for (const auto& l : levels) x.push_back(l.to(dtype));
  const torch::Tensor mask_features = mask_features_in.to(dtype);
  if (static_cast<int64_t>(x.size()) != kLevels)
    throw Error(ExitCode::bad_input, "Mask2Former decoder: needs " + std::to_string(kLevels) + " feature levels, got " +
                                         std::to_string(x.size()));
  std::vector<torch::Tensor> src, pos;
  std::vector<std::array<int64_t, 2>> sizes;
  for (int64_t i = 0; i < kLevels; ++i) {
    sizes.push_back({x[i].size(2), x[i].size(3)});
    pos.push_back(position_embedding_sine(x[i], config_.hidden_dim / 2).flatten(2).transpose(1, 2));
    torch::Tensor s = project_input_ ? input_proj[i]->as<D2Conv2dImpl>()->forward(x[i]) : x[i];
    src.push_back(s.flatten(2).transpose(1, 2) + level_embed->weight[i].view({1, 1, -1}));
  }
  const int64_t B = x[0].size(0);
  const torch::Tensor query_pos = query_embed->weight.unsqueeze(0).expand({B, -1, -1});
  torch::Tensor output = query_feat->weight.unsqueeze(0).expand({B, -1, -1});

  MaskFormerOutput r;
  DecoderPrediction p = forward_prediction_heads(output, mask_features, sizes[0]);
  const int64_t layers = static_cast<int64_t>(transformer_ffn_layers->size());
  for (int64_t i = 0; i < layers; ++i) {
    const int64_t level = i % kLevels;
    // A query masked everywhere would get a softmax over nothing (NaN): the
    // reference lets such rows attend everywhere instead.
    const torch::Tensor mask = p.attn_mask.logical_and(p.attn_mask.all(-1, true).logical_not());
    r.aux.emplace_back(p.logits, p.masks);
    output = transformer_cross_attention_layers[i]->as<AttentionLayerImpl>()->forward(output, src[level], mask,
                                                                                     pos[level], query_pos);
    output = transformer_self_attention_layers[i]->as<AttentionLayerImpl>()->forward(output, {}, {}, {}, query_pos);
    output = transformer_ffn_layers[i]->as<FFNLayerImpl>()->forward(output);
    p = forward_prediction_heads(output, mask_features, sizes[(i + 1) % kLevels]);
  }
  r.pred_logits = p.logits;
  r.pred_masks = p.masks;
  return r;
}

}  // namespace rass::nn
