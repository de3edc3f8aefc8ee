#include "rass/nn/swinir.hpp"

#include <ATen/ATen.h>
#include <torch/nn/functional/padding.h>
#include <torch/nn/functional/upsampling.h>

#include "rass/core/error.hpp"

namespace rass::nn {

using torch::indexing::None;
using torch::indexing::Slice;

namespace {

torch::nn::Conv2dOptions conv3(int64_t in, int64_t out) { return torch::nn::Conv2dOptions(in, out, 3).padding(1); }

// window_partition / window_reverse on [B, H, W, C].
torch::Tensor partition(const torch::Tensor& x, int64_t w) {
  const int64_t B = x.size(0), H = x.size(1), W = x.size(2), C = x.size(3);
  return x.view({B, H / w, w, W / w, w, C}).permute({0, 1, 3, 2, 4, 5}).contiguous().view({-1, w, w, C});
}
torch::Tensor reverse(const torch::Tensor& windows, int64_t w, int64_t H, int64_t W) {
  const int64_t B = windows.size(0) / ((H / w) * (W / w));
  return windows.view({B, H / w, W / w, w, w, -1}).permute({0, 1, 3, 2, 4, 5}).contiguous().view({B, H, W, -1});
}

torch::nn::LayerNorm layer_norm(int64_t dim) { return torch::nn::LayerNorm(torch::nn::LayerNormOptions({dim}).eps(1e-5)); }

}  // namespace

SwinIRMlpImpl::SwinIRMlpImpl(int64_t dim, int64_t hidden) {
  fc1 = register_module("fc1", Linear(dim, hidden));
  fc2 = register_module("fc2", Linear(hidden, dim));
}

torch::Tensor SwinIRMlpImpl::forward(const torch::Tensor& x) { return fc2(at::gelu(fc1(x))); }

IndexedConvImpl::IndexedConvImpl(int index, const torch::nn::Conv2dOptions& o) {
  conv = register_module(std::to_string(index), torch::nn::Conv2d(o));
}

torch::Tensor swinir_shift_mask(int64_t H, int64_t W, int64_t w, int64_t s) {
  torch::Tensor img = torch::zeros({1, H, W, 1});
  const std::vector<Slice> slices{Slice(0, -w), Slice(-w, -s), Slice(-s, None)};
  double cnt = 0;
  for (const Slice& a : slices)
    for (const Slice& b : slices) {
      img.index_put_({Slice(), a, b, Slice()}, cnt);
      cnt += 1;
    }
  const torch::Tensor mw = partition(img, w).view({-1, w * w});
  const torch::Tensor m = mw.unsqueeze(1) - mw.unsqueeze(2);
  return torch::zeros_like(m).masked_fill(m != 0, -100.0);
}

SwinIRBlockImpl::SwinIRBlockImpl(int64_t dim, int64_t resolution, int64_t heads, int64_t window_, int64_t shift_,
                                 double mlp_ratio)
    : window(window_), shift(shift_) {
  if (resolution <= window) shift = 0, window = resolution;
  norm1 = register_module("norm1", layer_norm(dim));
  attn = register_module("attn", SwinWindowAttention(dim, window, heads));
  norm2 = register_module("norm2", layer_norm(dim));
  mlp = register_module("mlp", SwinIRMlp(dim, int64_t(double(dim) * mlp_ratio)));
}

torch::Tensor SwinIRBlockImpl::forward(const torch::Tensor& x, int64_t H, int64_t W) {
  const int64_t B = x.size(0), C = x.size(2);
  torch::Tensor h = norm1(x).view({B, H, W, C});
  if (shift > 0) h = torch::roll(h, {-shift, -shift}, {1, 2});
  torch::Tensor mask;
  if (shift > 0) mask = swinir_shift_mask(H, W, window, shift).to(x.device(), x.scalar_type());
  const torch::Tensor a = attn(partition(h, window).view({-1, window * window, C}), mask);
  h = reverse(a.view({-1, window, window, C}), window, H, W);
  if (shift > 0) h = torch::roll(h, {shift, shift}, {1, 2});
  const torch::Tensor y = x + h.reshape({B, H * W, C});
  return y + mlp(norm2(y));
}

SwinIRLayerImpl::SwinIRLayerImpl(const SwinIRConfig& c, int64_t depth, int64_t heads) {
  auto group = register_module("residual_group", std::make_shared<torch::nn::Module>());
  blocks = group->register_module("blocks", torch::nn::ModuleList());
  for (int64_t j = 0; j < depth; ++j)
    blocks->push_back(SwinIRBlock(c.embed_dim, c.img_size, heads, c.window_size, j % 2 ? c.window_size / 2 : 0,
                                  c.mlp_ratio));
  conv = register_module("conv", torch::nn::Conv2d(conv3(c.embed_dim, c.embed_dim)));
}

torch::Tensor SwinIRLayerImpl::forward(const torch::Tensor& x, int64_t H, int64_t W) {
  torch::Tensor h = x;
  for (const auto& b : *blocks) h = b->as<SwinIRBlockImpl>()->forward(h, H, W);
  const int64_t B = x.size(0), C = x.size(2);
  h = conv(h.transpose(1, 2).reshape({B, C, H, W}));
  return h.flatten(2).transpose(1, 2) + x;
}

SwinIRImpl::SwinIRImpl(const SwinIRConfig& c) : config(c) {
  if (c.upsampler != "nearest+conv" || c.resi_connection != "1conv")
    throw_runtime("SwinIR: only upsampler \"nearest+conv\" with resi_connection \"1conv\" (DreamClear's) is built");
  if (c.sf != 2 && c.sf != 4 && c.sf != 8) throw_runtime("SwinIR: sf must be 2, 4 or 8");
  if (c.unshuffle_scale != c.sf) throw_runtime("SwinIR: only the unshuffled variant (unshuffle_scale = sf) is built");
  if (c.depths.size() != c.num_heads.size() || c.depths.empty())
    throw_runtime("SwinIR: depths and num_heads must be non-empty lists of one length");
  const int64_t nf = 64, E = c.embed_dim;
  conv_first = register_module("conv_first", IndexedConv(1, conv3(c.in_chans * c.unshuffle_scale * c.unshuffle_scale, E)));
  auto patch_embed = register_module("patch_embed", std::make_shared<torch::nn::Module>());
  patch_norm = patch_embed->register_module("norm", layer_norm(E));
  layers = register_module("layers", torch::nn::ModuleList());
  for (size_t i = 0; i < c.depths.size(); ++i) layers->push_back(SwinIRLayer(c, c.depths[i], c.num_heads[i]));
  norm = register_module("norm", layer_norm(E));
  conv_after_body = register_module("conv_after_body", torch::nn::Conv2d(conv3(E, E)));
  conv_before_upsample = register_module("conv_before_upsample", IndexedConv(0, conv3(E, nf)));
  conv_up1 = register_module("conv_up1", torch::nn::Conv2d(conv3(nf, nf)));
  if (c.sf >= 4) conv_up2 = register_module("conv_up2", torch::nn::Conv2d(conv3(nf, nf)));
  if (c.sf == 8) conv_up3 = register_module("conv_up3", torch::nn::Conv2d(conv3(nf, nf)));
  conv_hr = register_module("conv_hr", torch::nn::Conv2d(conv3(nf, nf)));
  conv_last = register_module("conv_last", torch::nn::Conv2d(conv3(nf, c.in_chans)));
}

torch::Tensor SwinIRImpl::forward(const torch::Tensor& x_in) {
  namespace F = torch::nn::functional;
  const SwinIRConfig& c = config;
  const int64_t H = x_in.size(2), W = x_in.size(3), w = c.window_size;
  torch::Tensor x = x_in;
  const int64_t ph = (w - H % w) % w, pw = (w - W % w) % w;
  if (ph || pw) x = F::pad(x, F::PadFuncOptions({0, pw, 0, ph}).mode(torch::kReflect));
  if (x.size(2) % (c.sf * w) || x.size(3) % (c.sf * w))
    throw_runtime("SwinIR: a " + std::to_string(H) + "x" + std::to_string(W) + " image gives features that are not a "
                  "multiple of the window (" + std::to_string(w) + ") after the " + std::to_string(c.sf) +
                  "x unshuffle; the input must be a multiple of " + std::to_string(c.sf * w));
  torch::Tensor mean = c.in_chans == 3 ? torch::tensor({0.4488f, 0.4371f, 0.4040f}) : torch::zeros({1});
  mean = mean.view({1, -1, 1, 1}).to(x.device(), x.scalar_type());
  x = (x - mean) * c.img_range;
  x = conv_first->conv(at::pixel_unshuffle(x, c.sf));
  const int64_t B = x.size(0), E = x.size(1), fh = x.size(2), fw = x.size(3);
  torch::Tensor t = patch_norm(x.flatten(2).transpose(1, 2));
  for (const auto& l : *layers) t = l->as<SwinIRLayerImpl>()->forward(t, fh, fw);
  t = norm(t).transpose(1, 2).reshape({B, E, fh, fw});
  x = conv_after_body(t) + x;
  x = F::leaky_relu(conv_before_upsample->conv(x), F::LeakyReLUFuncOptions().negative_slope(0.01));
  auto up = [](const torch::Tensor& v) {
    return F::interpolate(v, F::InterpolateFuncOptions().scale_factor(std::vector<double>{2.0, 2.0}).mode(torch::kNearest));
  };
  const auto lrelu = F::LeakyReLUFuncOptions().negative_slope(0.2);
  x = F::leaky_relu(conv_up1(up(x)), lrelu);
  if (conv_up2) x = F::leaky_relu(conv_up2(up(x)), lrelu);
  if (conv_up3) x = F::leaky_relu(conv_up3(up(x)), lrelu);
  x = conv_last(F::leaky_relu(conv_hr(x), lrelu));
  x = x / c.img_range + mean;
  return x.narrow(2, 0, std::min(x.size(2), H * c.sf)).narrow(3, 0, std::min(x.size(3), W * c.sf));
}

}  // namespace rass::nn
