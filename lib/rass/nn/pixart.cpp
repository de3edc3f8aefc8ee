#include "rass/nn/pixart.hpp"

#include <cmath>
#include <limits>
#include <string>

#include <ATen/ATen.h>
#include <torch/version.h>

#include "rass/core/error.hpp"

namespace rass::nn {

namespace {

torch::Tensor gelu_tanh(const torch::Tensor& x) { return at::gelu(x, "tanh"); }

torch::Tensor layer_norm_plain(const torch::Tensor& x) {
  return at::layer_norm(x, {x.size(-1)}, {}, {}, 1e-6);
}

// softmax(q k^T / sqrt(d)) v on [B, H, N, D]; `keep` (bool, broadcastable to
// [B, H, N, L]) removes keys. The fused kernel on LibTorch 2.x.
torch::Tensor attend(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                     const torch::Tensor& keep = {}) {
#if TORCH_VERSION_MAJOR >= 2
  return at::scaled_dot_product_attention(q, k, v, keep.defined() ? c10::optional<at::Tensor>(keep) : c10::nullopt);
#else
  torch::Tensor s = torch::matmul(q, k.transpose(-2, -1)) * (1.0 / std::sqrt(double(q.size(-1))));
  if (keep.defined()) s = s.masked_fill(keep.logical_not(), -std::numeric_limits<float>::infinity());
  return torch::matmul(s.softmax(-1), v);
#endif
}

std::vector<std::pair<int64_t, int64_t>> two(int64_t a, int64_t b, int64_t c) { return {{a, b}, {b, c}}; }

}  // namespace

IndexedLinearsImpl::IndexedLinearsImpl(const std::vector<int>& indices,
                                       const std::vector<std::pair<int64_t, int64_t>>& shapes) {
  for (size_t i = 0; i < indices.size(); ++i)
    layers.push_back(register_module(std::to_string(indices[i]), Linear(shapes[i].first, shapes[i].second)));
}

DitPatchEmbedImpl::DitPatchEmbedImpl(int64_t in_channels, int64_t hidden, int64_t patch) {
  proj = register_module("proj", torch::nn::Conv2d(torch::nn::Conv2dOptions(in_channels, hidden, patch).stride(patch)));
}

torch::Tensor DitPatchEmbedImpl::forward(const torch::Tensor& x) { return proj(x).flatten(2).transpose(1, 2); }

DitTimestepEmbedderImpl::DitTimestepEmbedderImpl(int64_t hidden, int64_t frequencies_) : frequencies(frequencies_) {
  mlp = register_module("mlp", IndexedLinears(std::vector<int>{0, 2}, two(frequencies, hidden, hidden)));
}

torch::Tensor DitTimestepEmbedderImpl::forward(const torch::Tensor& t) {
  // timestep_embedding in float32 ([cos, sin] of t * 10000^(-i/half)), then the weights' dtype.
  const int64_t half = frequencies / 2;
  const torch::Tensor freqs =
      torch::exp(-std::log(10000.0) * torch::arange(half, torch::dtype(torch::kFloat).device(t.device())) / double(half));
  const torch::Tensor args = t.to(torch::kFloat).unsqueeze(1) * freqs.unsqueeze(0);
  torch::Tensor emb = torch::cat({torch::cos(args), torch::sin(args)}, -1);
  if (frequencies % 2) emb = torch::cat({emb, torch::zeros_like(emb.narrow(1, 0, 1))}, -1);
  auto& l = mlp->layers;
  return l[1]->forward(torch::silu(l[0]->forward(emb.to(l[0]->weight.scalar_type()))));
}

torch::Tensor DitTimestepEmbedderImpl::forward_sizes(const torch::Tensor& s_in, int64_t batch) {
  torch::Tensor s = s_in.dim() == 1 ? s_in.unsqueeze(1) : s_in;
  if (s.size(0) != batch) {
    if (batch % s.size(0) != 0)
      throw_runtime("size condition of batch " + std::to_string(s.size(0)) + " for a batch of " + std::to_string(batch));
    s = s.repeat({batch / s.size(0), 1});
  }
  const int64_t dims = s.size(1);
  return forward(s.reshape({-1})).view({batch, -1}).contiguous().view({batch, dims * mlp->layers[1]->weight.size(0)});
}

DitMlpImpl::DitMlpImpl(int64_t in, int64_t hidden, int64_t out) {
  fc1 = register_module("fc1", Linear(in, hidden));
  fc2 = register_module("fc2", Linear(hidden, out));
}

torch::Tensor DitMlpImpl::forward(const torch::Tensor& x) { return fc2(gelu_tanh(fc1(x))); }

DitSelfAttentionImpl::DitSelfAttentionImpl(int64_t dim, int64_t heads_) : heads(heads_) {
  qkv = register_module("qkv", Linear(dim, 3 * dim));
  proj = register_module("proj", Linear(dim, dim));
}

torch::Tensor DitSelfAttentionImpl::forward(const torch::Tensor& x) {
  const int64_t B = x.size(0), N = x.size(1), C = x.size(2);
  const auto qkv_ = qkv(x).view({B, N, 3, heads, C / heads}).unbind(2);  // each [B, N, H, D]
  const torch::Tensor o = attend(qkv_[0].transpose(1, 2), qkv_[1].transpose(1, 2), qkv_[2].transpose(1, 2));
  return proj(o.transpose(1, 2).reshape({B, N, C}));
}

DitCrossAttentionImpl::DitCrossAttentionImpl(int64_t dim, int64_t heads_) : heads(heads_) {
  q_linear = register_module("q_linear", Linear(dim, dim));
  kv_linear = register_module("kv_linear", Linear(dim, 2 * dim));
  proj = register_module("proj", Linear(dim, dim));
}

torch::Tensor DitCrossAttentionImpl::forward(const torch::Tensor& x, const DitCaption& y) {
  const int64_t B = x.size(0), N = x.size(1), C = x.size(2), D = C / heads;
  const torch::Tensor q = q_linear(x).view({B, N, heads, D}).transpose(1, 2);
  const torch::Tensor kv = kv_linear(y.tokens);  // [B, L, 2C]
  torch::Tensor keep;
  if (y.keep.defined()) keep = y.keep.view({B, 1, 1, -1});
  const auto kv_ = kv.view({B, kv.size(1), 2, heads, D}).unbind(2);
  const torch::Tensor o = attend(q, kv_[0].transpose(1, 2), kv_[1].transpose(1, 2), keep);
  return proj(o.transpose(1, 2).reshape({B, N, C}));
}

PixArtBlockImpl::PixArtBlockImpl(int64_t hidden_, int64_t heads, double mlp_ratio) : hidden(hidden_) {
  scale_shift_table = register_parameter("scale_shift_table", torch::zeros({6, hidden}));
  attn = register_module("attn", DitSelfAttention(hidden, heads));
  cross_attn = register_module("cross_attn", DitCrossAttention(hidden, heads));
  mlp = register_module("mlp", DitMlp(hidden, int64_t(double(hidden) * mlp_ratio), hidden));
}

torch::Tensor PixArtBlockImpl::forward(const torch::Tensor& x_in, const DitCaption& y, const torch::Tensor& t0) {
  const int64_t B = x_in.size(0);
  const auto m = (scale_shift_table.unsqueeze(0) + t0.reshape({B, 6, -1})).chunk(6, 1);  // each [B, 1, C]
  torch::Tensor x = x_in + m[2] * attn(layer_norm_plain(x_in) * (1 + m[1]) + m[0]);
  x = x + cross_attn(x, y);
  return x + m[5] * mlp(layer_norm_plain(x) * (1 + m[4]) + m[3]);
}

DitFinalLayerImpl::DitFinalLayerImpl(int64_t hidden, int64_t patch, int64_t out_channels) {
  linear = register_module("linear", Linear(hidden, patch * patch * out_channels));
  scale_shift_table = register_parameter("scale_shift_table", torch::zeros({2, hidden}));
}

torch::Tensor DitFinalLayerImpl::forward(const torch::Tensor& x, const torch::Tensor& t) {
  const auto m = (scale_shift_table.unsqueeze(0) + t.unsqueeze(1)).chunk(2, 1);  // shift, scale [B, 1, C]
  return linear(layer_norm_plain(x) * (1 + m[1]) + m[0]);
}

DitCaptionEmbedderImpl::DitCaptionEmbedderImpl(int64_t caption_channels, int64_t hidden, int64_t tokens) {
  y_proj = register_module("y_proj", DitMlp(caption_channels, hidden, hidden));
  y_embedding = register_buffer("y_embedding", torch::zeros({tokens, caption_channels}));
}

PixArtMSImpl::PixArtMSImpl(const PixArtConfig& c) {
  if (c.hidden_size % 3 != 0)
    throw_runtime("PixArt hidden_size " + std::to_string(c.hidden_size) +
                  " is not a multiple of 3 (the size embedders give hidden_size / 3 each)");
  if (c.hidden_size % c.num_heads != 0) throw_runtime("PixArt hidden_size is not a multiple of num_heads");
  x_embedder = register_module("x_embedder", DitPatchEmbed(c.in_channels, c.hidden_size, c.patch_size));
  t_embedder = register_module("t_embedder", DitTimestepEmbedder(c.hidden_size));
  t_block = register_module("t_block", IndexedLinears(std::vector<int>{1}, std::vector<std::pair<int64_t, int64_t>>{{c.hidden_size, 6 * c.hidden_size}}));
  y_embedder =
      register_module("y_embedder", DitCaptionEmbedder(c.caption_channels, c.hidden_size, c.model_max_length));
  csize_embedder = register_module("csize_embedder", DitTimestepEmbedder(c.hidden_size / 3));
  ar_embedder = register_module("ar_embedder", DitTimestepEmbedder(c.hidden_size / 3));
  blocks = register_module("blocks", torch::nn::ModuleList());
  for (int64_t i = 0; i < c.depth; ++i) blocks->push_back(PixArtBlock(c.hidden_size, c.num_heads, c.mlp_ratio));
  final_layer = register_module("final_layer", DitFinalLayer(c.hidden_size, c.patch_size, c.out_channels()));
}

DitControlBlockImpl::DitControlBlockImpl(int64_t hidden, int64_t heads, double mlp_ratio) {
  copied_block = register_module("copied_block", PixArtBlock(hidden, heads, mlp_ratio));
}

AdaptiveModulatorImpl::AdaptiveModulatorImpl(int64_t hidden) {
  shared_proj = register_module("shared_proj", Linear(hidden, hidden / 2));
  proj_add = register_module("proj_add", Linear(hidden / 2, hidden));
  proj_mul = register_module("proj_mul", Linear(hidden / 2, hidden));
}

std::pair<torch::Tensor, torch::Tensor> AdaptiveModulatorImpl::forward(const torch::Tensor& c) {
  const torch::Tensor a = gelu_tanh(shared_proj(c));
  return {proj_mul(a), proj_add(a)};
}

AdaptiveModulatorMoEImpl::AdaptiveModulatorMoEImpl(int64_t hidden, int64_t n) {
  experts = register_module("experts", torch::nn::ModuleList());
  for (int64_t i = 0; i < n; ++i) experts->push_back(AdaptiveModulator(hidden));
  gate = register_module("gate", IndexedLinears(std::vector<int>{0, 2}, two(hidden, n * 8, n)));
}

std::pair<torch::Tensor, torch::Tensor> AdaptiveModulatorMoEImpl::forward(const torch::Tensor& c,
                                                                          const torch::Tensor& de_map) {
  auto& g = gate->layers;
  const torch::Tensor score = g[1]->forward(gelu_tanh(g[0]->forward(de_map))).softmax(-1);  // [B, N, E]
  std::vector<torch::Tensor> gammas, betas;
  for (const auto& e : *experts) {
    auto [gamma, beta] = e->as<AdaptiveModulatorImpl>()->forward(c);
    gammas.push_back(gamma.unsqueeze(-1));
    betas.push_back(beta.unsqueeze(-1));
  }
  const torch::Tensor w = score.unsqueeze(-2);  // [B, N, 1, E]
  return {(torch::cat(gammas, -1) * w).sum(-1), (torch::cat(betas, -1) * w).sum(-1)};
}

DitCrossDeImpl::DitCrossDeImpl(int64_t dim, int64_t heads_) : heads(heads_) {
  q_linear = register_module("q_linear", Linear(dim, dim));
  kv_linear = register_module("kv_linear", Linear(dim, 2 * dim));
  proj = register_module("proj", Linear(dim, dim));
  de_proj = register_module("de_proj", Linear(dim, dim));
  norm1 = register_module("norm1", torch::nn::LayerNorm(torch::nn::LayerNormOptions({dim})));
  norm2 = register_module("norm2", torch::nn::LayerNorm(torch::nn::LayerNormOptions({dim})));
}

std::pair<torch::Tensor, torch::Tensor> DitCrossDeImpl::forward(const torch::Tensor& c_lq, const torch::Tensor& c_pre,
                                                                int64_t group) {
  const int64_t B = c_lq.size(0), N = c_lq.size(1), C = c_lq.size(2), D = C / heads;
  if (group <= 0) group = B;
  if (B % group != 0) throw_runtime("cross_de: batch " + std::to_string(B) + " is not a multiple of its group");
  const int64_t S = B / group;  // sequences of group * N tokens
  const torch::Tensor q = q_linear(norm1(c_lq)).view({S, group * N, heads, D}).transpose(1, 2);
  const auto kv = kv_linear(norm2(c_pre)).view({S, group * N, 2, heads, D}).unbind(2);
  const torch::Tensor a = attend(q, kv[0].transpose(1, 2), kv[1].transpose(1, 2)).transpose(1, 2).reshape({B, N, C});
  return {proj(a), de_proj(a)};
}

DreamClearDiTImpl::DreamClearDiTImpl(const PixArtConfig& c) : config(c) {
  if (c.copy_blocks_num < 1 || c.copy_blocks_num > c.depth)
    throw_runtime("DreamClear copy_blocks_num " + std::to_string(c.copy_blocks_num) + " outside 1.." +
                  std::to_string(c.depth));
  base_model = register_module("base_model", PixArtMS(c));
  controlnet_lq = register_module("controlnet_lq", torch::nn::ModuleList());
  controlnet_pre = register_module("controlnet_pre", torch::nn::ModuleList());
  am_lq = register_module("am_lq", torch::nn::ModuleList());
  am_pre = register_module("am_pre", torch::nn::ModuleList());
  cross_de = register_module("cross_de", torch::nn::ModuleList());
  for (int64_t i = 0; i < c.copy_blocks_num; ++i) {
    controlnet_lq->push_back(DitControlBlock(c.hidden_size, c.num_heads, c.mlp_ratio));
    controlnet_pre->push_back(DitControlBlock(c.hidden_size, c.num_heads, c.mlp_ratio));
    am_lq->push_back(AdaptiveModulatorMoE(c.hidden_size, c.num_experts));
    am_pre->push_back(AdaptiveModulator(c.hidden_size));
    cross_de->push_back(DitCrossDe(c.hidden_size, c.num_heads));
  }
  c_embedder_lq = register_module("c_embedder_lq", DitPatchEmbed(c.in_channels, c.hidden_size, c.patch_size));
  c_embedder_pre = register_module("c_embedder_pre", DitPatchEmbed(c.in_channels, c.hidden_size, c.patch_size));
  x_embedder_lq = register_module("x_embedder_lq", DitPatchEmbed(c.in_channels, c.hidden_size, c.patch_size));
  x_embedder_pre = register_module("x_embedder_pre", DitPatchEmbed(c.in_channels, c.hidden_size, c.patch_size));
}

torch::Tensor DreamClearDiTImpl::positions(int64_t h, int64_t w) const {
  // get_2d_sincos_pos_embed as numpy computes it: arange (float32) / (n /
  // base_size) in float32, then / lewei_scale in float64 (PixArt stores
  // lewei_scale as a one-element tuple, which numpy takes as float64);
  // sin/cos in float64.
  const int64_t D = config.hidden_size, quarter = D / 4;
  auto grid = [&](int64_t n) {
    std::vector<double> g(static_cast<size_t>(n));
    const float step = float(double(n) / double(config.base_size));
    for (int64_t i = 0; i < n; ++i) g[size_t(i)] = double(float(i) / step) / config.lewei_scale;
    return g;
  };
  const std::vector<double> gh = grid(h), gw = grid(w);
  std::vector<double> omega(static_cast<size_t>(quarter));
  for (int64_t k = 0; k < quarter; ++k) omega[size_t(k)] = 1.0 / std::pow(10000.0, double(k) / double(quarter));
  torch::Tensor out = torch::empty({h * w, D}, torch::kDouble);
  double* p = out.data_ptr<double>();
  for (int64_t i = 0; i < h; ++i)
    for (int64_t j = 0; j < w; ++j, p += D)
      for (int64_t k = 0; k < quarter; ++k) {
        const double a = gw[size_t(j)] * omega[size_t(k)], b = gh[size_t(i)] * omega[size_t(k)];
        p[k] = std::sin(a), p[quarter + k] = std::cos(a);
        p[2 * quarter + k] = std::sin(b), p[3 * quarter + k] = std::cos(b);
      }
  return out.unsqueeze(0);
}

torch::Tensor DreamClearDiTImpl::forward(const DreamClearDitInput& in) {
  const PixArtConfig& c = config;
  const torch::Tensor& x = in.x;
  const int64_t B = x.size(0), p = c.patch_size;
  if (x.dim() != 4 || x.size(1) != c.in_channels || x.size(2) % p || x.size(3) % p)
    throw_runtime("DreamClear DiT: latent of shape " + std::to_string(x.dim()) + "-D is not [B, " +
                  std::to_string(c.in_channels) + ", h, w] with h, w multiples of " + std::to_string(p));
  const int64_t h = x.size(2) / p, w = x.size(3) / p;
  const auto dtype = base_model->x_embedder->proj->weight.scalar_type();
  const torch::Tensor pos = positions(h, w).to(x.device(), dtype);
  const torch::Tensor xd = x.to(dtype);
  torch::Tensor c_lq = c_embedder_lq(in.c_lq.to(dtype)), c_pre = c_embedder_pre(in.c_pre.to(dtype));
  const torch::Tensor x_lq = x_embedder_lq(xd) + pos, x_pre = x_embedder_pre(xd) + pos;
  torch::Tensor hs = base_model->x_embedder(xd) + pos;
  torch::Tensor t = base_model->t_embedder(in.timestep.to(x.device()));
  t = t + torch::cat({base_model->csize_embedder->forward_sizes(in.img_hw.to(x.device(), torch::kFloat), B),
                      base_model->ar_embedder->forward_sizes(in.aspect.to(x.device(), torch::kFloat), B)},
                     1);
  const torch::Tensor t0 = base_model->t_block->layers[0]->forward(torch::silu(t));
  DitCaption y;
  y.tokens = base_model->y_embedder->y_proj(in.caption.to(x.device(), dtype).squeeze(1));  // [B, L, C]
  if (in.mask.defined()) {
    torch::Tensor m = in.mask.to(x.device()).reshape({-1, y.tokens.size(1)});
    if (B % m.size(0) != 0) throw_runtime("DreamClear DiT: caption mask batch does not divide the batch");
    // A mask keeping no token is refused where captions are read
    // (read_dreamclear_caption): no host sync here, every step of every tile.
    y.keep = m.repeat({B / m.size(0), 1}) != 0;
  }
  const auto& blocks = *base_model->blocks;
  for (int64_t i = 0; i < c.copy_blocks_num; ++i) {
    c_lq = controlnet_lq[i]->as<DitControlBlockImpl>()->copied_block(i == 0 ? x_lq + c_lq : c_lq, y, t0);
    c_pre = controlnet_pre[i]->as<DitControlBlockImpl>()->copied_block(i == 0 ? x_pre + c_pre : c_pre, y, t0);
    hs = blocks[size_t(i)]->as<PixArtBlockImpl>()->forward(hs, y, t0);
    auto [ref, de_map] = cross_de[i]->as<DitCrossDeImpl>()->forward(c_lq, c_pre, in.de_group);
    hs = hs + ref;
    auto [g1, b1] = am_pre[i]->as<AdaptiveModulatorImpl>()->forward(c_pre);
    auto [g2, b2] = am_lq[i]->as<AdaptiveModulatorMoEImpl>()->forward(c_lq, de_map);
    hs = (1 + g1) * hs + b1;
    hs = (1 + g2) * hs + b2;
  }
  for (int64_t i = c.copy_blocks_num; i < c.depth; ++i) hs = blocks[size_t(i)]->as<PixArtBlockImpl>()->forward(hs, y, t0);
  hs = base_model->final_layer(hs, t);
  const int64_t oc = c.out_channels();
  return hs.reshape({B, h, w, p, p, oc}).permute({0, 5, 1, 3, 2, 4}).reshape({B, oc, h * p, w * p});
}

torch::Tensor DreamClearDiTImpl::forward_cfg(const DreamClearDitInput& in, double cfg_scale, int64_t guided) {
  if (in.x.size(0) != 1) throw_runtime("DreamClear forward_cfg takes one latent");
  DreamClearDitInput two = in;
  two.x = torch::cat({in.x, in.x});
  two.timestep = in.timestep.reshape({-1}).narrow(0, 0, 1).repeat({2});
  const torch::Tensor null_y =
      base_model->y_embedder->y_embedding.unsqueeze(0).unsqueeze(0).to(in.caption.device(), in.caption.scalar_type());
  two.caption = torch::cat({in.caption, null_y});
  two.de_group = 2;
  const torch::Tensor out = forward(two);
  const torch::Tensor cond = out.narrow(0, 0, 1), uncond = out.narrow(0, 1, 1);
  const torch::Tensor g = uncond.narrow(1, 0, guided) + cfg_scale * (cond.narrow(1, 0, guided) - uncond.narrow(1, 0, guided));
  return torch::cat({g, cond.narrow(1, guided, out.size(1) - guided)}, 1);
}

}  // namespace rass::nn
