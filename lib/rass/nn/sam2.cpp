#include "rass/nn/sam2.hpp"

#include <algorithm>
#include <cmath>
#include <numeric>

#include <ATen/ATen.h>
#include <torch/nn/functional/pooling.h>
#include <torch/nn/functional/upsampling.h>
#include <torch/nn/modules/activation.h>
#include <torch/version.h>

#include "rass/core/error.hpp"

namespace rass::nn {

namespace F = torch::nn::functional;

int64_t Sam2Config::depth() const { return std::accumulate(stages.begin(), stages.end(), int64_t(0)); }

std::vector<int64_t> Sam2Config::stage_ends() const {
  std::vector<int64_t> ends;
  int64_t acc = 0;
  for (int64_t s : stages) ends.push_back((acc += s) - 1);
  return ends;
}

std::vector<int64_t> Sam2Config::stage_dims() const {
  const std::vector<Block> b = blocks();
  std::vector<int64_t> dims;
  for (int64_t e : stage_ends()) dims.push_back(b[size_t(e)].dim_out);
  return dims;
}

std::vector<Sam2Config::Block> Sam2Config::blocks() const {
  const std::vector<int64_t> stage_ends = this->stage_ends();
  std::vector<int64_t> q_pool_blocks;
  for (size_t s = 0; s + 1 < stage_ends.size() && int64_t(q_pool_blocks.size()) < q_pool; ++s)
    q_pool_blocks.push_back(stage_ends[s] + 1);
  auto in = [](const std::vector<int64_t>& v, int64_t i) { return std::find(v.begin(), v.end(), i) != v.end(); };
  std::vector<Block> out;
  int64_t dim = embed_dim, heads = num_heads;
  size_t stage = 1;
  for (int64_t i = 0; i < depth(); ++i) {
    int64_t dim_out = dim;
    // The window lags a block: chosen before the stage advances.
    int64_t window = window_spec.at(stage - 1);
    if (in(global_att_blocks, i)) window = 0;
    if (in(stage_ends, i - 1)) {
      dim_out = int64_t(double(dim) * dim_mul);  // Python's int(), as hieradet.py
      heads = int64_t(double(heads) * head_mul);
      ++stage;
    }
    out.push_back({dim, dim_out, heads, window, in(q_pool_blocks, i)});
    dim = dim_out;
  }
  return out;
}

Sam2Config sam2_preset(const std::string& name) {
  Sam2Config c;  // hiera_b+
  if (name == "hiera_t") {
    c.embed_dim = 96, c.num_heads = 1, c.stages = {1, 2, 7, 2}, c.global_att_blocks = {5, 7, 9};
    c.window_pos_embed_bkg_spatial_size = {7, 7};
  } else if (name == "hiera_s") {
    c.embed_dim = 96, c.num_heads = 1, c.stages = {1, 2, 11, 2}, c.global_att_blocks = {7, 10, 13};
    c.window_pos_embed_bkg_spatial_size = {7, 7};
  } else if (name == "hiera_l") {
    c.embed_dim = 144, c.num_heads = 2, c.stages = {2, 6, 36, 4}, c.global_att_blocks = {23, 33, 43};
    c.window_pos_embed_bkg_spatial_size = {7, 7}, c.window_spec = {8, 4, 16, 8};
  } else if (name != "hiera_b+") {
    throw_usage("SAM 2 variant '" + name + "': expected hiera_t, hiera_s, hiera_b+ or hiera_l");
  }
  return c;
}

namespace {

// softmax(q k^T / sqrt(d)) v over [N, heads, L, d]: the fused kernel on
// LibTorch 2.x; on 1.x in groups of about 64M scores (a hiera_l global
// block holds 8 heads of 4096^2).
torch::Tensor sam2_attention(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v) {
#if TORCH_VERSION_MAJOR >= 2
  return at::scaled_dot_product_attention(q, k, v);
#else
  const int64_t n = q.size(0), h = q.size(1), lq = q.size(2), lk = k.size(2), d = q.size(3);
  const torch::Tensor qf = q.reshape({n * h, lq, d}), kf = k.reshape({n * h, lk, d}), vf = v.reshape({n * h, lk, d});
  const int64_t rows = n * h, group = std::max<int64_t>(1, (int64_t(64) << 20) / std::max<int64_t>(lq * lk, 1));
  std::vector<torch::Tensor> outs;
  for (int64_t a = 0; a < rows; a += group) {
    const int64_t e = std::min(rows, a + group);
    const torch::Tensor s = torch::matmul(qf.slice(0, a, e) * (1.0 / std::sqrt(double(d))), kf.slice(0, a, e).transpose(1, 2));
    outs.push_back(torch::matmul(s.softmax(-1), vf.slice(0, a, e)));
  }
  return (outs.size() == 1 ? outs[0] : torch::cat(outs, 0)).view({n, h, lq, -1});
#endif
}

// [B, H, W, C] -> 2x2 max pool (floor) -> [B, H/2, W/2, C] (do_pool).
torch::Tensor sam2_pool(const torch::Tensor& x) {
  return F::max_pool2d(x.permute({0, 3, 1, 2}), F::MaxPool2dFuncOptions(2).stride(2)).permute({0, 2, 3, 1});
}

// window_partition: [B, H, W, C] zero-padded to multiples of w -> [B * nw, w, w, C].
torch::Tensor sam2_windows(const torch::Tensor& x, int64_t w, int64_t& hp, int64_t& wp) {
  const int64_t b = x.size(0), h = x.size(1), wd = x.size(2), c = x.size(3);
  const int64_t ph = (w - h % w) % w, pw = (w - wd % w) % w;
  const torch::Tensor xp = (ph > 0 || pw > 0) ? F::pad(x, F::PadFuncOptions({0, 0, 0, pw, 0, ph})) : x;
  hp = h + ph, wp = wd + pw;
  return xp.view({b, hp / w, w, wp / w, w, c}).permute({0, 1, 3, 2, 4, 5}).reshape({-1, w, w, c});
}

// window_unpartition: [B * nw, w, w, C] over an hp x wp grid -> [B, h, wd, C].
torch::Tensor sam2_unwindow(const torch::Tensor& win, int64_t w, int64_t hp, int64_t wp, int64_t h, int64_t wd) {
  const int64_t b = win.size(0) / (hp * wp / w / w);
  torch::Tensor x = win.reshape({b, hp / w, wp / w, w, w, -1}).permute({0, 1, 3, 2, 4, 5}).reshape({b, hp, wp, -1});
  if (hp > h || wp > wd) x = x.slice(1, 0, h).slice(2, 0, wd);
  return x;
}

}  // namespace

Sam2PatchEmbedImpl::Sam2PatchEmbedImpl(int64_t dim) {
  proj = register_module("proj", torch::nn::Conv2d(torch::nn::Conv2dOptions(3, dim, 7).stride(4).padding(3)));
}

Sam2AttentionImpl::Sam2AttentionImpl(int64_t dim, int64_t dim_out, int64_t heads_, bool q_pool_)
    : heads(heads_), q_pool(q_pool_) {
  if (dim_out % heads != 0)
    throw_bad_input("SAM 2 config", "Hiera width " + std::to_string(dim_out) + " is not a multiple of " +
                                        std::to_string(heads) + " heads");
  qkv = register_module("qkv", Linear(dim, 3 * dim_out));
  proj = register_module("proj", Linear(dim_out, dim_out));
}

torch::Tensor Sam2AttentionImpl::forward(const torch::Tensor& x) {
  const int64_t b = x.size(0);
  int64_t h = x.size(1), w = x.size(2);
  // [B, H*W, 3, heads, hd] -> q, k, v [B, H*W, heads, hd]
  const torch::Tensor t = qkv(x).reshape({b, h * w, 3, heads, -1});
  torch::Tensor q = t.select(2, 0), k = t.select(2, 1), v = t.select(2, 2);
  if (q_pool) {
    q = sam2_pool(q.reshape({b, h, w, -1}));
    h = q.size(1), w = q.size(2);
    q = q.reshape({b, h * w, heads, -1});
  }
  const torch::Tensor o = sam2_attention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2));
  return proj(o.transpose(1, 2).reshape({b, h, w, -1}));
}

Sam2BlockImpl::Sam2BlockImpl(int64_t dim_, int64_t dim_out_, int64_t heads, double mlp_ratio, bool q_stride_,
                             int64_t window_size_)
    : dim(dim_), dim_out(dim_out_), window_size(window_size_), q_stride(q_stride_) {
  auto ln = [](int64_t d) { return torch::nn::LayerNorm(torch::nn::LayerNormOptions({d}).eps(1e-6)); };
  norm1 = register_module("norm1", ln(dim));
  attn = register_module("attn", Sam2Attention(dim, dim_out, heads, q_stride));
  norm2 = register_module("norm2", ln(dim_out));
  mlp = register_module("mlp", SamMlp(dim_out, int64_t(double(dim_out) * mlp_ratio), dim_out, 2, true));
  if (dim != dim_out) proj = register_module("proj", Linear(dim, dim_out));
}

torch::Tensor Sam2BlockImpl::forward(const torch::Tensor& in) {
  torch::Tensor shortcut = in;
  torch::Tensor x = norm1(in);
  if (dim != dim_out) {
    shortcut = proj(x);
    if (q_stride) shortcut = sam2_pool(shortcut);
  }
  int64_t ws = window_size, h = x.size(1), w = x.size(2), hp = 0, wp = 0;
  if (ws > 0) x = sam2_windows(x, ws, hp, wp);
  x = attn(x);
  if (q_stride) {
    // The queries were pooled: windows of half the size over the pooled map.
    ws = window_size / 2;
    h = shortcut.size(1), w = shortcut.size(2);
    if (ws > 0) hp = h + (ws - h % ws) % ws, wp = w + (ws - w % ws) % ws;
  }
  if (window_size > 0) x = sam2_unwindow(x, ws, hp, wp, h, w);
  x = shortcut + x;
  return x + mlp(norm2(x));
}

HieraImpl::HieraImpl(const Sam2Config& c) {
  if (c.stages.size() != c.window_spec.size() || c.stages.empty())
    throw_bad_input("SAM 2 config", "stages and window_spec differ in length");
  patch_embed = register_module("patch_embed", Sam2PatchEmbed(c.embed_dim));
  pos_embed = register_parameter(
      "pos_embed", torch::zeros({1, c.embed_dim, c.window_pos_embed_bkg_spatial_size[0], c.window_pos_embed_bkg_spatial_size[1]}));
  pos_embed_window =
      register_parameter("pos_embed_window", torch::zeros({1, c.embed_dim, c.window_spec[0], c.window_spec[0]}));
  stage_ends = c.stage_ends();
  blocks = register_module("blocks", torch::nn::ModuleList());
  for (const Sam2Config::Block& b : c.blocks())
    blocks->push_back(Sam2Block(b.dim, b.dim_out, b.heads, c.mlp_ratio, b.q_stride, b.window));
}

std::vector<torch::Tensor> HieraImpl::forward(const torch::Tensor& in) {
  torch::Tensor x = patch_embed->proj(in).permute({0, 2, 3, 1});
  const int64_t h = x.size(1), w = x.size(2), w0 = pos_embed_window.size(2);
  if (h % w0 != 0 || w % w0 != 0)
    throw_runtime("SAM 2: a " + std::to_string(h) + "x" + std::to_string(w) + " patch grid is not a multiple of the " +
                  std::to_string(w0) + "-wide window position embedding");
  // _get_pos_embed: bicubic (align_corners false) to the grid plus the window
  // embedding tiled over it, in the parameters' dtype.
  const torch::Tensor pe =
      F::interpolate(pos_embed, F::InterpolateFuncOptions()
                                    .size(std::vector<int64_t>{h, w})
                                    .mode(torch::kBicubic)
                                    .align_corners(false)) +
      pos_embed_window.repeat({1, 1, h / w0, w / w0});
  x = x + pe.permute({0, 2, 3, 1});
  std::vector<torch::Tensor> outs;
  for (size_t i = 0; i < blocks->size(); ++i) {
    x = blocks[i]->as<Sam2BlockImpl>()->forward(x);
    if (std::find(stage_ends.begin(), stage_ends.end(), int64_t(i)) != stage_ends.end())
      outs.push_back(x.permute({0, 3, 1, 2}));
  }
  return outs;
}

Sam2FpnNeckImpl::Sam2FpnNeckImpl(const std::vector<int64_t>& channels, int64_t d_model) {
  convs = register_module("convs", torch::nn::ModuleList());
  for (int64_t ch : channels) {
    torch::nn::Sequential s;
    s->push_back("conv", torch::nn::Conv2d(torch::nn::Conv2dOptions(ch, d_model, 1)));
    convs->push_back(s);
  }
}

std::vector<torch::Tensor> Sam2FpnNeckImpl::forward(const std::vector<torch::Tensor>& xs) {
  const int64_t n = int64_t(convs->size()) - 1;
  if (int64_t(xs.size()) != n + 1) throw_runtime("SAM 2: the neck got " + std::to_string(xs.size()) + " levels");
  std::vector<torch::Tensor> out(xs.size());
  torch::Tensor prev;
  for (int64_t i = n; i >= 0; --i) {
    const torch::Tensor lateral = convs[size_t(n - i)]->as<torch::nn::SequentialImpl>()->forward(xs[size_t(i)]);
    if (std::find(top_down_levels.begin(), top_down_levels.end(), i) != top_down_levels.end() && prev.defined()) {
      // In float32, as the reference (the sum then is float32 too).
      const torch::Tensor td = F::interpolate(prev.to(torch::kFloat), F::InterpolateFuncOptions()
                                                                          .scale_factor(std::vector<double>{2.0, 2.0})
                                                                          .mode(torch::kNearest));
      prev = lateral + td;
    } else {
      prev = lateral;
    }
    out[size_t(i)] = prev;
  }
  return out;
}

Sam2ImageEncoderImpl::Sam2ImageEncoderImpl(const Sam2Config& c) {
  trunk = register_module("trunk", Hiera(c));
  std::vector<int64_t> dims = c.stage_dims();
  std::reverse(dims.begin(), dims.end());  // backbone_channel_list: deep to shallow
  neck = register_module("neck", Sam2FpnNeck(dims, c.heads.prompt_embed_dim));
}

std::vector<torch::Tensor> Sam2ImageEncoderImpl::forward(const torch::Tensor& x) {
  std::vector<torch::Tensor> f = neck->forward(trunk->forward(x));
  f.pop_back();  // scalp 1
  return f;
}

Sam2MaskDecoderImpl::Sam2MaskDecoderImpl(const Sam2Config& c)
    : num_mask_tokens(c.heads.num_multimask_outputs + 1),
      stability_delta(c.stability_delta),
      stability_thresh(c.stability_thresh) {
  const int64_t d = c.heads.prompt_embed_dim;
  if (d % 8 != 0) throw_bad_input("SAM 2 config", "prompt_embed_dim " + std::to_string(d) + " is not a multiple of 8");
  transformer = register_module("transformer", SamTwoWayTransformer(c.heads, true));
  iou_token = register_module("iou_token", torch::nn::Embedding(1, d));
  mask_tokens = register_module("mask_tokens", torch::nn::Embedding(num_mask_tokens, d));
  obj_score_token = register_module("obj_score_token", torch::nn::Embedding(1, d));
  output_upscaling = register_module("output_upscaling", sam_output_upscaling(d));
  conv_s0 = register_module("conv_s0", torch::nn::Conv2d(torch::nn::Conv2dOptions(d, d / 8, 1)));
  conv_s1 = register_module("conv_s1", torch::nn::Conv2d(torch::nn::Conv2dOptions(d, d / 4, 1)));
  output_hypernetworks_mlps = register_module("output_hypernetworks_mlps", torch::nn::ModuleList());
  for (int64_t i = 0; i < num_mask_tokens; ++i) output_hypernetworks_mlps->push_back(SamMlp(d, d, d / 8, 3));
  iou_prediction_head = register_module(
      "iou_prediction_head", SamMlp(d, c.heads.iou_head_hidden_dim, num_mask_tokens, c.heads.iou_head_depth, false, true));
  pred_obj_score_head = register_module("pred_obj_score_head", SamMlp(d, d, 1, 3));
}

Sam2Decoded Sam2MaskDecoderImpl::forward(const torch::Tensor& image_embedding, const torch::Tensor& image_pe,
                                         const torch::Tensor& sparse, const torch::Tensor& dense,
                                         const torch::Tensor& s0, const torch::Tensor& s1, bool multimask) {
  const int64_t bs = sparse.size(0);
  const torch::Tensor out_tokens = torch::cat({obj_score_token->weight, iou_token->weight, mask_tokens->weight}, 0);
  const torch::Tensor tokens = torch::cat({out_tokens.unsqueeze(0).expand({bs, -1, -1}), sparse}, 1);
  const torch::Tensor src = image_embedding.expand({bs, -1, -1, -1}) + dense;
  const int64_t c = src.size(1), h = src.size(2), w = src.size(3);
  auto [hs, keys] = transformer->forward(src, image_pe, tokens);
  const torch::Tensor feat = keys.transpose(1, 2).reshape({bs, c, h, w});
  // dc1, ln1, act1, dc2, act2 = output_upscaling, with the high-resolution
  // features added after each transposed convolution.
  auto layer = [&](size_t i, const torch::Tensor& t) { return (output_upscaling->begin() + long(i))->forward(t); };
  torch::Tensor up = layer(2, layer(1, layer(0, feat) + s1));
  up = layer(4, layer(3, up) + s0);
  std::vector<torch::Tensor> hyper;
  for (int64_t i = 0; i < num_mask_tokens; ++i)
    hyper.push_back(output_hypernetworks_mlps[size_t(i)]->as<SamMlpImpl>()->forward(hs.select(1, 2 + i)));
  const int64_t uc = up.size(1), uh = up.size(2), uw = up.size(3);
  const torch::Tensor masks = torch::matmul(torch::stack(hyper, 1), up.reshape({bs, uc, uh * uw})).reshape({bs, -1, uh, uw});
  const torch::Tensor iou = iou_prediction_head(hs.select(1, 1));
  Sam2Decoded out;
  out.object_score = pred_obj_score_head(hs.select(1, 0));
  const auto lopt = torch::TensorOptions().dtype(torch::kLong).device(masks.device());
  if (multimask) {
    out.masks = masks.slice(1, 1), out.iou = iou.slice(1, 1);
    out.tokens = torch::arange(1, num_mask_tokens, lopt).unsqueeze(0).expand({bs, -1});
    return out;
  }
  // _dynamic_multimask_via_stability: token 0 when its mask is stable, else
  // the best of 1..3 by predicted IoU.
  const torch::Tensor best = iou.slice(1, 1).argmax(1);  // [B]
  const torch::Tensor rows = torch::arange(bs, lopt);
  const torch::Tensor best_masks = masks.slice(1, 1).index({rows, best}).unsqueeze(1);
  const torch::Tensor best_iou = iou.slice(1, 1).index({rows, best}).unsqueeze(1);
  const torch::Tensor single = masks.slice(1, 0, 1), single_iou = iou.slice(1, 0, 1);
  const torch::Tensor flat = single.flatten(-2);
  const torch::Tensor area_i = (flat > stability_delta).sum(-1).to(torch::kFloat);
  const torch::Tensor area_u = (flat > -stability_delta).sum(-1).to(torch::kFloat);
  const torch::Tensor stability = torch::where(area_u > 0, area_i / area_u, torch::ones_like(area_u));  // [B, 1]
  const torch::Tensor stable = stability >= stability_thresh;
  out.masks = torch::where(stable.unsqueeze(-1).unsqueeze(-1), single, best_masks);
  out.iou = torch::where(stable, single_iou, best_iou);
  out.tokens = torch::where(stable, torch::zeros_like(best).unsqueeze(1), (best + 1).unsqueeze(1));
  return out;
}

Sam2Impl::Sam2Impl(const Sam2Config& c) : config(c) {
  image_encoder = register_module("image_encoder", Sam2ImageEncoder(c));
  sam_prompt_encoder = register_module("sam_prompt_encoder", SamPromptEncoder(c.heads));
  sam_mask_decoder = register_module("sam_mask_decoder", Sam2MaskDecoder(c));
  no_mem_embed = register_parameter("no_mem_embed", torch::zeros({1, 1, c.heads.prompt_embed_dim}));
}

Sam2Features Sam2Impl::encode(const torch::Tensor& x) {
  const std::vector<torch::Tensor> f = image_encoder->forward(x);
  Sam2Features out;
  // forward_image: the two finer levels through the decoder's 1x1 convolutions.
  const auto dt = sam_mask_decoder->conv_s0->weight.scalar_type();
  out.s0 = sam_mask_decoder->conv_s0(f[0].to(dt));
  out.s1 = sam_mask_decoder->conv_s1(f[1].to(dt));
  out.embedding = f[2] + no_mem_embed.view({1, -1, 1, 1});  // float32 + float32 (or promoted)
  return out;
}

Sam2Decoded Sam2Impl::decode(const Sam2Features& f, const SamPrompts& p, bool multimask) const {
  // Boxes as two points labelled 2 and 3 before the clicks; the prompt
  // encoder then appends a padding point (it sees no boxes).
  SamPrompts q = p;
  if (p.boxes.defined()) {
    const int64_t b = p.boxes.size(0);
    const torch::Tensor corners = p.boxes.to(torch::kFloat).reshape({b, 2, 2});
    const torch::Tensor labels =
        torch::tensor({2.0f, 3.0f}, corners.options()).view({1, 2}).expand({b, 2});
    q.point_coords = p.point_coords.defined() ? torch::cat({corners, p.point_coords.to(torch::kFloat)}, 1) : corners;
    q.point_labels = p.point_labels.defined()
                         ? torch::cat({labels, p.point_labels.to(corners.device(), torch::kFloat)}, 1)
                         : labels;
    q.boxes = torch::Tensor();
  }
  auto [sparse, dense] = sam_prompt_encoder.ptr()->forward(q);
  const auto dt = sam_mask_decoder->mask_tokens->weight.scalar_type();
  return sam_mask_decoder.ptr()->forward(f.embedding.to(dt), sam_prompt_encoder->dense_pe().to(dt), sparse.to(dt),
                                         dense.to(dt), f.s0.to(dt), f.s1.to(dt), multimask);
}

}  // namespace rass::nn
