#include "rass/nn/sam.hpp"

#include <algorithm>
#include <cmath>
#include <vector>

#include <ATen/ATen.h>
#include <torch/nn/functional/activation.h>
#include <torch/nn/functional/padding.h>
#include <torch/nn/modules/activation.h>
#include <torch/version.h>

#include "rass/core/error.hpp"

namespace rass::nn {

namespace F = torch::nn::functional;

SamConfig sam_preset(const std::string& name) {
  SamConfig c;
  if (name == "vit_b") {
    c.embed_dim = 768, c.depth = 12, c.num_heads = 12, c.global_attn_indexes = {2, 5, 8, 11};
  } else if (name == "vit_l") {
    c.embed_dim = 1024, c.depth = 24, c.num_heads = 16, c.global_attn_indexes = {5, 11, 17, 23};
  } else if (name == "vit_h") {
    c.embed_dim = 1280, c.depth = 32, c.num_heads = 16, c.global_attn_indexes = {7, 15, 23, 31};
  } else {
    throw_usage("SAM variant '" + name + "': expected vit_b, vit_l or vit_h");
  }
  return c;
}

// ---- common.py ----

LayerNorm2dImpl::LayerNorm2dImpl(int64_t channels, double eps_) : eps(eps_) {
  weight = register_parameter("weight", torch::ones({channels}));
  bias = register_parameter("bias", torch::zeros({channels}));
}

torch::Tensor LayerNorm2dImpl::forward(const torch::Tensor& x) {
  // In float32 for half inputs: the squares overflow fp16's range.
  const torch::Tensor xf = x.scalar_type() == torch::kHalf ? x.to(torch::kFloat) : x;
  const torch::Tensor u = xf.mean(1, true);
  const torch::Tensor d = xf - u;
  const torch::Tensor s = d.pow(2).mean(1, true);
  const torch::Tensor y = d / torch::sqrt(s + eps);
  return weight.view({-1, 1, 1}) * y.to(x.scalar_type()) + bias.view({-1, 1, 1});
}

SamMlpBlockImpl::SamMlpBlockImpl(int64_t dim, int64_t hidden, bool relu_) : relu(relu_) {
  lin1 = register_module("lin1", Linear(dim, hidden));
  lin2 = register_module("lin2", Linear(hidden, dim));
}

torch::Tensor SamMlpBlockImpl::forward(const torch::Tensor& x) {
  const torch::Tensor h = lin1(x);
  return lin2(relu ? torch::relu(h) : torch::gelu(h));
}

// ---- image_encoder.py ----

SamVitAttentionImpl::SamVitAttentionImpl(int64_t dim, int64_t heads_, bool use_rel_pos_, int64_t grid)
    : heads(heads_), use_rel_pos(use_rel_pos_) {
  qkv = register_module("qkv", Linear(dim, 3 * dim));
  proj = register_module("proj", Linear(dim, dim));
  if (use_rel_pos) {
    rel_pos_h = register_parameter("rel_pos_h", torch::zeros({2 * grid - 1, dim / heads}));
    rel_pos_w = register_parameter("rel_pos_w", torch::zeros({2 * grid - 1, dim / heads}));
  }
}

namespace {

// get_rel_pos for equal query and key sizes (always so here: the encoder
// runs at its configured size), rel_pos [2 size - 1, C] -> [size, size, C]:
// entry (i, j) is rel_pos[i - j + size - 1].
torch::Tensor sam_rel_pos_table(int64_t size, const torch::Tensor& rel_pos) {
  if (rel_pos.size(0) != 2 * size - 1)
    throw_runtime("SAM relative positions of " + std::to_string(rel_pos.size(0)) + " entries for a grid of " +
                  std::to_string(size) + " (the encoder runs at its configured image size only)");
  const torch::Tensor q = torch::arange(size, torch::kLong).unsqueeze(1);
  const torch::Tensor k = torch::arange(size, torch::kLong).unsqueeze(0);
  return rel_pos.index_select(0, (q - k + (size - 1)).flatten().to(rel_pos.device())).view({size, size, -1});
}

}  // namespace

torch::Tensor SamVitAttentionImpl::forward(const torch::Tensor& x) {
  const int64_t b = x.size(0), h = x.size(1), w = x.size(2), n = h * w;
  // [3, B * heads, n, head_dim]
  const torch::Tensor qkv_ = qkv(x).reshape({b, n, 3, heads, -1}).permute({2, 0, 3, 1, 4}).reshape({3, b * heads, n, -1});
  const torch::Tensor q = qkv_[0], k = qkv_[1], v = qkv_[2];
  const int64_t hd = q.size(-1);
  // add_decomposed_rel_pos's terms, with the unscaled q: [B*heads, h, w, h] and [.., w].
  torch::Tensor rel_h, rel_w;
  if (use_rel_pos) {
    const torch::Tensor rh = sam_rel_pos_table(h, rel_pos_h), rw = sam_rel_pos_table(w, rel_pos_w);
    const torch::Tensor rq = q.reshape({b * heads, h, w, hd});
    rel_h = torch::einsum("bhwc,hkc->bhwk", {rq, rh});
    rel_w = torch::einsum("bhwc,wkc->bhwk", {rq, rw});
  }
  // The heads (and windows) in groups of about 64M scores: a global block's
  // 12 heads of 4096^2 scores, its bias and softmax were 2.4 GB at once
  // (rass-sam ViT-B peaked at 4.7 GB). Each head's numbers are unchanged.
  const int64_t rows = b * heads, group = std::max<int64_t>(1, (int64_t(64) << 20) / std::max<int64_t>(n * n, 1));
  std::vector<torch::Tensor> outs;
  for (int64_t a = 0; a < rows; a += group) {
    const int64_t e = std::min(rows, a + group);
    const torch::Tensor qg = q.slice(0, a, e), kg = k.slice(0, a, e), vg = v.slice(0, a, e);
    torch::Tensor bias;
    if (use_rel_pos)
      bias = (rel_h.slice(0, a, e).unsqueeze(4) + rel_w.slice(0, a, e).unsqueeze(3)).reshape({e - a, n, n});
    torch::Tensor o;
#if TORCH_VERSION_MAJOR >= 2
    // LibTorch 2.x: the fused kernel with the relative positions as an
    // additive mask (its default scale is the reference's 1/sqrt(head_dim)).
    o = at::scaled_dot_product_attention(qg, kg, vg, bias.defined() ? c10::optional<torch::Tensor>(bias) : c10::nullopt);
#endif
    if (!o.defined()) {
      torch::Tensor attn = torch::matmul(qg * (1.0 / std::sqrt(double(hd))), kg.transpose(-2, -1));
      if (bias.defined()) attn = attn + bias;
      o = torch::matmul(attn.softmax(-1), vg);
    }
    outs.push_back(o);
  }
  const torch::Tensor out = outs.size() == 1 ? outs[0] : torch::cat(outs, 0);
  return proj(out.reshape({b, heads, h, w, hd}).permute({0, 2, 3, 1, 4}).reshape({b, h, w, -1}));
}

SamVitBlockImpl::SamVitBlockImpl(const SamConfig& c, int64_t window_size_) : window_size(window_size_) {
  norm1 = register_module("norm1", torch::nn::LayerNorm(torch::nn::LayerNormOptions({c.embed_dim}).eps(1e-6)));
  const int64_t grid = window_size > 0 ? window_size : c.embedding_size();
  attn = register_module("attn", SamVitAttention(c.embed_dim, c.num_heads, c.use_rel_pos, grid));
  norm2 = register_module("norm2", torch::nn::LayerNorm(torch::nn::LayerNormOptions({c.embed_dim}).eps(1e-6)));
  mlp = register_module("mlp", SamMlpBlock(c.embed_dim, int64_t(double(c.embed_dim) * c.mlp_ratio), false));
}

torch::Tensor SamVitBlockImpl::forward(const torch::Tensor& x) {
  torch::Tensor h = norm1(x);
  if (window_size > 0) {
    // window_partition: zero padding to a multiple of the window, no mask.
    const int64_t b = h.size(0), H = h.size(1), W = h.size(2), C = h.size(3), s = window_size;
    const int64_t ph = (s - H % s) % s, pw = (s - W % s) % s;
    if (ph > 0 || pw > 0) h = F::pad(h, F::PadFuncOptions({0, 0, 0, pw, 0, ph}));
    const int64_t Hp = H + ph, Wp = W + pw;
    h = h.reshape({b, Hp / s, s, Wp / s, s, C}).permute({0, 1, 3, 2, 4, 5}).contiguous().view({-1, s, s, C});
    h = attn(h);
    h = h.reshape({b, Hp / s, Wp / s, s, s, -1}).permute({0, 1, 3, 2, 4, 5}).contiguous().view({b, Hp, Wp, -1});
    if (Hp > H || Wp > W) h = h.slice(1, 0, H).slice(2, 0, W).contiguous();
  } else {
    h = attn(h);
  }
  const torch::Tensor y = x + h;
  return y + mlp(norm2(y));
}

SamPatchEmbedImpl::SamPatchEmbedImpl(int64_t patch, int64_t dim) {
  proj = register_module("proj", torch::nn::Conv2d(torch::nn::Conv2dOptions(3, dim, patch).stride(patch)));
}

SamImageEncoderImpl::SamImageEncoderImpl(const SamConfig& c) {
  if (c.image_size <= 0 || c.patch_size <= 0 || c.image_size % c.patch_size != 0)
    throw_bad_input("SAM config", "image_size " + std::to_string(c.image_size) + " is not a multiple of patch_size " +
                                      std::to_string(c.patch_size));
  if (c.num_heads <= 0 || c.embed_dim % c.num_heads != 0)
    throw_bad_input("SAM config", "embed_dim " + std::to_string(c.embed_dim) + " is not a multiple of num_heads " +
                                      std::to_string(c.num_heads));
  patch_embed = register_module("patch_embed", SamPatchEmbed(c.patch_size, c.embed_dim));
  const int64_t g = c.embedding_size();
  pos_embed = register_parameter("pos_embed", torch::zeros({1, g, g, c.embed_dim}));
  blocks = register_module("blocks", torch::nn::ModuleList());
  for (int64_t i = 0; i < c.depth; ++i) {
    bool global = false;
    for (int64_t j : c.global_attn_indexes) global = global || j == i;
    blocks->push_back(SamVitBlock(c, global ? 0 : c.window_size));
  }
  const int64_t o = c.prompt_embed_dim;
  neck = register_module(
      "neck", torch::nn::Sequential(torch::nn::Conv2d(torch::nn::Conv2dOptions(c.embed_dim, o, 1).bias(false)),
                                    LayerNorm2d(o),
                                    torch::nn::Conv2d(torch::nn::Conv2dOptions(o, o, 3).padding(1).bias(false)),
                                    LayerNorm2d(o)));
}

torch::Tensor SamImageEncoderImpl::forward(const torch::Tensor& x) {
  torch::Tensor h = patch_embed->proj(x).permute({0, 2, 3, 1});
  h = h + pos_embed;
  for (const auto& blk : *blocks) h = blk->as<SamVitBlockImpl>()->forward(h);
  return neck->forward(h.permute({0, 3, 1, 2}));
}

std::pair<torch::Tensor, torch::Tensor> SamImageEncoderImpl::forward_with_early(const torch::Tensor& x) {
  torch::Tensor h = patch_embed->proj(x).permute({0, 2, 3, 1});
  h = h + pos_embed;
  torch::Tensor early;
  for (const auto& blk : *blocks) {
    auto* b = blk->as<SamVitBlockImpl>();
    h = b->forward(h);
    if (!early.defined() && b->window_size == 0) early = h;
  }
  if (!early.defined()) throw_bad_input("SAM config", "RobustSAM needs a global-attention block (global_attn_indexes)");
  return {neck->forward(h.permute({0, 3, 1, 2})), early};
}

// ---- prompt_encoder.py ----

SamPositionEmbeddingImpl::SamPositionEmbeddingImpl(int64_t num_pos_feats) {
  positional_encoding_gaussian_matrix =
      register_buffer("positional_encoding_gaussian_matrix", torch::randn({2, num_pos_feats}));
}

torch::Tensor SamPositionEmbeddingImpl::encode(const torch::Tensor& unit_coords) const {
  // In float32 whatever the module's dtype (the reference casts coordinates
  // to float): a bf16 coordinate of the 1024 frame is off by up to 2 px.
  torch::Tensor c = 2 * unit_coords.to(torch::kFloat) - 1;
  c = torch::matmul(c, positional_encoding_gaussian_matrix.to(torch::kFloat));
  c = 2 * M_PI * c;
  return torch::cat({torch::sin(c), torch::cos(c)}, -1);
}

torch::Tensor SamPositionEmbeddingImpl::dense(int64_t h, int64_t w) const {
  const auto opt = positional_encoding_gaussian_matrix.options().dtype(torch::kFloat);
  const torch::Tensor grid = torch::ones({h, w}, opt);
  const torch::Tensor y = (grid.cumsum(0) - 0.5) / double(h);
  const torch::Tensor x = (grid.cumsum(1) - 0.5) / double(w);
  return encode(torch::stack({x, y}, -1)).permute({2, 0, 1}).to(positional_encoding_gaussian_matrix.scalar_type());
}

int64_t SamPrompts::count() const {
  if (point_coords.defined()) return point_coords.size(0);
  if (boxes.defined()) return boxes.size(0);
  if (masks.defined()) return masks.size(0);
  return 1;
}

SamPromptEncoderImpl::SamPromptEncoderImpl(const SamConfig& c)
    : embed_dim(c.prompt_embed_dim), grid(c.embedding_size()), image_size(c.image_size) {
  pe_layer = register_module("pe_layer", SamPositionEmbedding(c.prompt_embed_dim / 2));
  point_embeddings = register_module("point_embeddings", torch::nn::ModuleList());
  for (int i = 0; i < 4; ++i) point_embeddings->push_back(torch::nn::Embedding(1, c.prompt_embed_dim));
  not_a_point_embed = register_module("not_a_point_embed", torch::nn::Embedding(1, c.prompt_embed_dim));
  const int64_t m = c.mask_in_chans;
  mask_downscaling = register_module(
      "mask_downscaling",
      torch::nn::Sequential(torch::nn::Conv2d(torch::nn::Conv2dOptions(1, m / 4, 2).stride(2)), LayerNorm2d(m / 4),
                            torch::nn::GELU(), torch::nn::Conv2d(torch::nn::Conv2dOptions(m / 4, m, 2).stride(2)),
                            LayerNorm2d(m), torch::nn::GELU(),
                            torch::nn::Conv2d(torch::nn::Conv2dOptions(m, c.prompt_embed_dim, 1))));
  no_mask_embed = register_module("no_mask_embed", torch::nn::Embedding(1, c.prompt_embed_dim));
}

torch::Tensor SamPromptEncoderImpl::dense_pe() const { return pe_layer->dense(grid, grid).unsqueeze(0); }

std::pair<torch::Tensor, torch::Tensor> SamPromptEncoderImpl::forward(const SamPrompts& p) {
  const int64_t bs = p.count();
  const torch::Tensor& pe_w = pe_layer->positional_encoding_gaussian_matrix;
  // Coordinates and their encodings in float32; the sum is cast to the
  // module's dtype at the end.
  const auto f32 = pe_w.options().dtype(torch::kFloat);
  auto weight = [&](int i) { return point_embeddings[i]->as<torch::nn::EmbeddingImpl>()->weight.to(torch::kFloat); };
  const double size = double(image_size);
  std::vector<torch::Tensor> sparse{torch::empty({bs, 0, embed_dim}, f32)};
  if (p.point_coords.defined()) {
    torch::Tensor coords = p.point_coords.to(f32) + 0.5;  // pixel centres
    torch::Tensor labels = p.point_labels.to(pe_w.device(), torch::kFloat);
    if (!p.boxes.defined()) {  // a padding point
      coords = torch::cat({coords, torch::zeros({coords.size(0), 1, 2}, coords.options())}, 1);
      labels = torch::cat({labels, -torch::ones({labels.size(0), 1}, labels.options())}, 1);
    }
    torch::Tensor e = pe_layer->encode(coords / size);  // the input frame is square (image_size)
    const torch::Tensor pad = (labels == -1).unsqueeze(-1);
    e = torch::where(pad, not_a_point_embed->weight.to(torch::kFloat).view({1, 1, -1}).expand_as(e), e);
    // Labels 0 and 1 (clicks), 2 and 3 (SAM 2's box corners as points).
    for (int k = 0; k < 4; ++k)
      e = e + (labels == double(k)).unsqueeze(-1).to(e.scalar_type()) * weight(k).view({1, 1, -1});
    sparse.push_back(e);
  }
  if (p.boxes.defined()) {
    const torch::Tensor corners = (p.boxes.to(f32) + 0.5).reshape({-1, 2, 2});
    torch::Tensor e = pe_layer->encode(corners / size);
    e = e + torch::cat({weight(2), weight(3)}, 0).unsqueeze(0);
    sparse.push_back(e);
  }
  const auto wopt = no_mask_embed->weight.options();
  torch::Tensor dense;
  if (p.masks.defined())
    dense = mask_downscaling->forward(p.masks.to(wopt));
  else
    dense = no_mask_embed->weight.reshape({1, -1, 1, 1}).expand({bs, -1, grid, grid});
  return {torch::cat(sparse, 1).to(wopt.dtype()), dense};
}

// ---- transformer.py ----

SamDecoderAttentionImpl::SamDecoderAttentionImpl(int64_t dim, int64_t heads_, int64_t downsample_rate) : heads(heads_) {
  const int64_t inner = dim / downsample_rate;
  if (inner % heads != 0)
    throw_bad_input("SAM config", "decoder attention width " + std::to_string(inner) + " is not a multiple of " +
                                      std::to_string(heads) + " heads");
  q_proj = register_module("q_proj", Linear(dim, inner));
  k_proj = register_module("k_proj", Linear(dim, inner));
  v_proj = register_module("v_proj", Linear(dim, inner));
  out_proj = register_module("out_proj", Linear(inner, dim));
}

torch::Tensor SamDecoderAttentionImpl::forward(const torch::Tensor& q_in, const torch::Tensor& k_in,
                                               const torch::Tensor& v_in) {
  auto split = [&](const torch::Tensor& t) {
    return t.reshape({t.size(0), t.size(1), heads, t.size(2) / heads}).transpose(1, 2);
  };
  const torch::Tensor q = split(q_proj(q_in)), k = split(k_proj(k_in)), v = split(v_proj(v_in));
  torch::Tensor o;
#if TORCH_VERSION_MAJOR >= 2
  o = at::scaled_dot_product_attention(q, k, v);  // LibTorch 2.x: the fused kernel
#endif
  if (!o.defined()) {
    const torch::Tensor attn = (torch::matmul(q, k.permute({0, 1, 3, 2})) / std::sqrt(double(q.size(-1)))).softmax(-1);
    o = torch::matmul(attn, v);
  }
  const torch::Tensor out = o.transpose(1, 2);
  return out_proj(out.reshape({out.size(0), out.size(1), -1}));
}

SamTwoWayBlockImpl::SamTwoWayBlockImpl(const SamConfig& c, bool skip, bool sam2_mlp) : skip_first_layer_pe(skip) {
  const int64_t d = c.prompt_embed_dim;
  auto ln = [&] { return torch::nn::LayerNorm(torch::nn::LayerNormOptions({d})); };  // eps 1e-5
  self_attn = register_module("self_attn", SamDecoderAttention(d, c.decoder_heads, 1));
  norm1 = register_module("norm1", ln());
  cross_attn_token_to_image = register_module("cross_attn_token_to_image",
                                              SamDecoderAttention(d, c.decoder_heads, c.attention_downsample_rate));
  norm2 = register_module("norm2", ln());
  if (sam2_mlp)
    mlp_layers = register_module("mlp", SamMlp(d, c.decoder_mlp_dim, d, 2));
  else
    mlp = register_module("mlp", SamMlpBlock(d, c.decoder_mlp_dim, true));
  norm3 = register_module("norm3", ln());
  norm4 = register_module("norm4", ln());
  cross_attn_image_to_token = register_module("cross_attn_image_to_token",
                                              SamDecoderAttention(d, c.decoder_heads, c.attention_downsample_rate));
}

std::pair<torch::Tensor, torch::Tensor> SamTwoWayBlockImpl::forward(torch::Tensor queries, torch::Tensor keys,
                                                                    const torch::Tensor& query_pe,
                                                                    const torch::Tensor& key_pe) {
  if (skip_first_layer_pe) {
    queries = self_attn(queries, queries, queries);
  } else {
    const torch::Tensor q = queries + query_pe;
    queries = queries + self_attn(q, q, queries);
  }
  queries = norm1(queries);
  torch::Tensor q = queries + query_pe, k = keys + key_pe;
  queries = norm2(queries + cross_attn_token_to_image(q, k, keys));
  queries = norm3(queries + (mlp ? mlp(queries) : mlp_layers(queries)));
  q = queries + query_pe, k = keys + key_pe;
  keys = norm4(keys + cross_attn_image_to_token(k, q, queries));
  return {queries, keys};
}

SamTwoWayTransformerImpl::SamTwoWayTransformerImpl(const SamConfig& c, bool mlp_layers) {
  layers = register_module("layers", torch::nn::ModuleList());
  for (int64_t i = 0; i < c.decoder_depth; ++i) layers->push_back(SamTwoWayBlock(c, i == 0, mlp_layers));
  final_attn_token_to_image = register_module(
      "final_attn_token_to_image", SamDecoderAttention(c.prompt_embed_dim, c.decoder_heads, c.attention_downsample_rate));
  norm_final_attn = register_module("norm_final_attn", torch::nn::LayerNorm(torch::nn::LayerNormOptions({c.prompt_embed_dim})));
}

std::pair<torch::Tensor, torch::Tensor> SamTwoWayTransformerImpl::forward(const torch::Tensor& image,
                                                                          const torch::Tensor& image_pe,
                                                                          const torch::Tensor& tokens) {
  const torch::Tensor keys0 = image.flatten(2).permute({0, 2, 1});
  const torch::Tensor pe = image_pe.flatten(2).permute({0, 2, 1});
  torch::Tensor queries = tokens, keys = keys0;
  for (const auto& l : *layers) std::tie(queries, keys) = l->as<SamTwoWayBlockImpl>()->forward(queries, keys, tokens, pe);
  const torch::Tensor q = queries + tokens, k = keys + pe;
  queries = norm_final_attn(queries + final_attn_token_to_image(q, k, keys));
  return {queries, keys};
}

// ---- mask_decoder.py ----

torch::nn::Sequential sam_output_upscaling(int64_t d) {
  return torch::nn::Sequential(torch::nn::ConvTranspose2d(torch::nn::ConvTranspose2dOptions(d, d / 4, 2).stride(2)),
                               LayerNorm2d(d / 4), torch::nn::GELU(),
                               torch::nn::ConvTranspose2d(torch::nn::ConvTranspose2dOptions(d / 4, d / 8, 2).stride(2)),
                               torch::nn::GELU());
}

SamMlpImpl::SamMlpImpl(int64_t in, int64_t hidden, int64_t out, int64_t n, bool gelu_, bool sigmoid_)
    : gelu(gelu_), sigmoid(sigmoid_) {
  layers = register_module("layers", torch::nn::ModuleList());
  for (int64_t i = 0; i < n; ++i) layers->push_back(Linear(i == 0 ? in : hidden, i == n - 1 ? out : hidden));
}

torch::Tensor SamMlpImpl::forward(torch::Tensor x) {
  const size_t n = layers->size();
  for (size_t i = 0; i < n; ++i) {
    x = layers[i]->as<LinearImpl>()->forward(x);
    if (i + 1 < n) x = gelu ? torch::gelu(x) : torch::relu(x);
  }
  return sigmoid ? torch::sigmoid(x) : x;
}

namespace {

// hyper_in @ upscaled_embedding: [B, T, C] token vectors over [B, C, h, w] features -> [B, T, h, w].
torch::Tensor sam_hyper_masks(const std::vector<torch::Tensor>& hyper, const torch::Tensor& features) {
  const int64_t bs = features.size(0), c = features.size(1), h = features.size(2), w = features.size(3);
  return torch::matmul(torch::stack(hyper, 1), features.reshape({bs, c, h * w})).reshape({bs, -1, h, w});
}

}  // namespace

SamMaskDecoderImpl::SamMaskDecoderImpl(const SamConfig& c) : num_mask_tokens(c.num_multimask_outputs + 1) {
  const int64_t d = c.prompt_embed_dim;
  if (d % 8 != 0) throw_bad_input("SAM config", "prompt_embed_dim " + std::to_string(d) + " is not a multiple of 8");
  transformer = register_module("transformer", SamTwoWayTransformer(c));
  iou_token = register_module("iou_token", torch::nn::Embedding(1, d));
  mask_tokens = register_module("mask_tokens", torch::nn::Embedding(num_mask_tokens, d));
  output_upscaling = register_module("output_upscaling", sam_output_upscaling(d));
  output_hypernetworks_mlps = register_module("output_hypernetworks_mlps", torch::nn::ModuleList());
  for (int64_t i = 0; i < num_mask_tokens; ++i) output_hypernetworks_mlps->push_back(SamMlp(d, d, d / 8, 3));
  iou_prediction_head =
      register_module("iou_prediction_head", SamMlp(d, c.iou_head_hidden_dim, num_mask_tokens, c.iou_head_depth));
  if (c.robust) {
    if (d % num_mask_tokens != 0)  // the token block splits a token into one chunk per mask token
      throw_bad_input("SAM config", "RobustSAM's token block needs prompt_embed_dim a multiple of the mask tokens (" +
                                        std::to_string(num_mask_tokens) + ")");
    using Kind = RobustFeatureBlockImpl::Kind;
    custom_robust_token = register_module("custom_robust_token", torch::nn::Embedding(num_mask_tokens, d));
    robust_mlp = register_module("robust_mlp", SamMlp(d, d, d / 8, 3));
    fourier_mask_features = register_module("fourier_mask_features", RobustFeatureBlock(Kind::mask, d / 8, d));
    fourier_first_layer_features =
        register_module("fourier_first_layer_features", RobustFeatureBlock(Kind::first_layer, c.embed_dim, d));
    fourier_last_layer_features =
        register_module("fourier_last_layer_features", RobustFeatureBlock(Kind::last_layer, d, d));
    custom_token_block = register_module("custom_token_block", RobustTokenBlock(num_mask_tokens, d));
  }
  if (c.hq) {
    if (c.robust) throw_bad_input("SAM config", "robust and hq: a decoder is RobustSAM's or HQ-SAM's, not both");
    using torch::nn::ConvTranspose2dOptions;
    hf_token = register_module("hf_token", torch::nn::Embedding(1, d));
    hf_mlp = register_module("hf_mlp", SamMlp(d, d, d / 8, 3));
    compress_vit_feat = register_module(
        "compress_vit_feat",
        torch::nn::Sequential(torch::nn::ConvTranspose2d(ConvTranspose2dOptions(c.embed_dim, d, 2).stride(2)),
                              LayerNorm2d(d), torch::nn::GELU(),
                              torch::nn::ConvTranspose2d(ConvTranspose2dOptions(d, d / 8, 2).stride(2))));
    embedding_encoder = register_module(
        "embedding_encoder",
        torch::nn::Sequential(torch::nn::ConvTranspose2d(ConvTranspose2dOptions(d, d / 4, 2).stride(2)),
                              LayerNorm2d(d / 4), torch::nn::GELU(),
                              torch::nn::ConvTranspose2d(ConvTranspose2dOptions(d / 4, d / 8, 2).stride(2))));
    embedding_maskfeature = register_module(
        "embedding_maskfeature",
        torch::nn::Sequential(torch::nn::Conv2d(torch::nn::Conv2dOptions(d / 8, d / 4, 3).padding(1)),
                              LayerNorm2d(d / 4), torch::nn::GELU(),
                              torch::nn::Conv2d(torch::nn::Conv2dOptions(d / 4, d / 8, 3).padding(1))));
  }
}

torch::Tensor SamMaskDecoderImpl::hq_features(const torch::Tensor& image_embedding, const torch::Tensor& early_features) {
  return embedding_encoder->forward(image_embedding) + compress_vit_feat->forward(early_features.permute({0, 3, 1, 2}));
}

std::pair<torch::Tensor, torch::Tensor> SamMaskDecoderImpl::forward_hq(const torch::Tensor& image_embedding,
                                                                       const torch::Tensor& image_pe,
                                                                       const torch::Tensor& sparse,
                                                                       const torch::Tensor& dense, const torch::Tensor& hq,
                                                                       bool multimask) {
  const auto [hs, up] = decode_tokens(torch::cat({iou_token->weight, mask_tokens->weight, hf_token->weight}, 0),
                                      image_embedding, image_pe, sparse, dense);
  const torch::Tensor up_hq = embedding_maskfeature->forward(up) + hq.to(up.scalar_type());
  std::vector<torch::Tensor> hyper;
  for (int64_t i = 0; i < num_mask_tokens; ++i)
    hyper.push_back(output_hypernetworks_mlps[i]->as<SamMlpImpl>()->forward(hs.select(1, 1 + i)));
  const torch::Tensor masks_sam = sam_hyper_masks(hyper, up);
  const torch::Tensor masks_hq = sam_hyper_masks({hf_mlp(hs.select(1, 1 + num_mask_tokens))}, up_hq);
  const torch::Tensor iou = iou_prediction_head(hs.select(1, 0));
  const torch::Tensor sam_part = multimask ? masks_sam.slice(1, 1) : masks_sam.slice(1, 0, 1);
  const torch::Tensor out = hq_token_only ? masks_hq.expand_as(sam_part).contiguous() : sam_part + masks_hq;
  return {out, multimask ? iou.slice(1, 1) : iou.slice(1, 0, 1)};
}

torch::Tensor SamMaskDecoderImpl::robust_features(const torch::Tensor& image_embedding,
                                                  const torch::Tensor& early_features) {
  return fourier_first_layer_features(early_features.permute({0, 3, 1, 2})) +
         fourier_last_layer_features(image_embedding);
}

std::pair<torch::Tensor, torch::Tensor> SamMaskDecoderImpl::forward_robust(
    const torch::Tensor& image_embedding, const torch::Tensor& image_pe, const torch::Tensor& sparse,
    const torch::Tensor& dense, const torch::Tensor& robust, bool multimask) {
  const auto [hs, up] = decode_tokens(torch::cat({iou_token->weight, custom_robust_token->weight}, 0), image_embedding,
                                      image_pe, sparse, dense);
  const torch::Tensor features = fourier_mask_features(up) + robust.to(up.scalar_type());
  std::vector<torch::Tensor> hyper;
  for (int64_t i = 0; i < num_mask_tokens; ++i) hyper.push_back(robust_mlp(custom_token_block(hs.select(1, 1 + i))));
  const torch::Tensor masks = sam_hyper_masks(hyper, features);
  const torch::Tensor iou = iou_prediction_head(hs.select(1, 0));
  if (multimask) return {masks.slice(1, 1), iou.slice(1, 1)};
  return {masks.slice(1, 0, 1), iou.slice(1, 0, 1)};
}

SamMaskDecoderImpl::Decoded SamMaskDecoderImpl::decode_tokens(const torch::Tensor& output_tokens,
                                                                const torch::Tensor& image_embedding,
                                                                const torch::Tensor& image_pe, const torch::Tensor& sparse,
                                                                const torch::Tensor& dense) {
  const int64_t bs = sparse.size(0);
  const torch::Tensor out_tokens = output_tokens.unsqueeze(0).expand({bs, -1, -1});
  const torch::Tensor tokens = torch::cat({out_tokens, sparse.to(out_tokens.scalar_type())}, 1);
  // repeat_interleave of one image's embedding over the objects.
  const torch::Tensor src = image_embedding.expand({bs, -1, -1, -1}) + dense;
  const torch::Tensor pos = image_pe.expand({bs, -1, -1, -1});
  const int64_t c = src.size(1), h = src.size(2), w = src.size(3);
  auto [hs, keys] = transformer(src, pos, tokens);
  return {hs, output_upscaling->forward(keys.transpose(1, 2).reshape({bs, c, h, w}))};
}

std::pair<torch::Tensor, torch::Tensor> SamMaskDecoderImpl::forward(const torch::Tensor& image_embedding,
                                                                    const torch::Tensor& image_pe,
                                                                    const torch::Tensor& sparse,
                                                                    const torch::Tensor& dense, bool multimask) {
  const auto [hs, up] = decode_tokens(torch::cat({iou_token->weight, mask_tokens->weight}, 0), image_embedding,
                                      image_pe, sparse, dense);
  std::vector<torch::Tensor> hyper;
  for (int64_t i = 0; i < num_mask_tokens; ++i)
    hyper.push_back(output_hypernetworks_mlps[i]->as<SamMlpImpl>()->forward(hs.select(1, 1 + i)));
  const torch::Tensor masks = sam_hyper_masks(hyper, up);
  const torch::Tensor iou = iou_prediction_head(hs.select(1, 0));
  if (multimask) return {masks.slice(1, 1), iou.slice(1, 1)};
  return {masks.slice(1, 0, 1), iou.slice(1, 0, 1)};
}

SamImpl::SamImpl(const SamConfig& c) : config(c) {
  image_encoder = register_module("image_encoder", SamImageEncoder(c));
  prompt_encoder = register_module("prompt_encoder", SamPromptEncoder(c));
  mask_decoder = register_module("mask_decoder", SamMaskDecoder(c));
}

std::pair<torch::Tensor, torch::Tensor> SamImpl::decode(const torch::Tensor& image_embedding, const SamPrompts& p,
                                                        bool multimask, const torch::Tensor& decoder_features) const {
  auto [sparse, dense] = prompt_encoder.ptr()->forward(p);
  const torch::Tensor emb = image_embedding;
  if (decoder_features.defined() && config.robust)
    return mask_decoder.ptr()->forward_robust(emb, prompt_encoder->dense_pe().to(emb.scalar_type()),
                                              sparse.to(emb.scalar_type()), dense.to(emb.scalar_type()),
                                              decoder_features, multimask);
  if (decoder_features.defined() && config.hq)
    return mask_decoder.ptr()->forward_hq(emb, prompt_encoder->dense_pe().to(emb.scalar_type()),
                                          sparse.to(emb.scalar_type()), dense.to(emb.scalar_type()), decoder_features,
                                          multimask);
  return mask_decoder.ptr()->forward(emb, prompt_encoder->dense_pe().to(emb.scalar_type()), sparse.to(emb.scalar_type()),
                               dense.to(emb.scalar_type()), multimask);
}

}  // namespace rass::nn
