#include "rass/nn/vq_autoencoder.hpp"

#include <algorithm>
#include <cmath>
#include <vector>

#include <torch/version.h>

#include <torch/nn/functional/padding.h>
#include <torch/nn/functional/upsampling.h>
#include <torch/torch.h>

#include "rass/core/error.hpp"

namespace F = torch::nn::functional;

namespace rass::nn {

namespace {

torch::nn::GroupNorm ldm_norm(int64_t ch) { return torch::nn::GroupNorm(torch::nn::GroupNormOptions(32, ch).eps(1e-6)); }
torch::nn::Conv2d ldm_conv(int64_t in, int64_t out, int64_t k, int64_t stride = 1, int64_t pad = -1) {
  return torch::nn::Conv2d(torch::nn::Conv2dOptions(in, out, k).stride(stride).padding(pad < 0 ? k / 2 : pad));
}
bool ldm_attends(const VqAutoencoderConfig& c, int64_t res) {
  for (int64_t r : c.attn_resolutions)
    if (r == res) return true;
  return false;
}

}  // namespace

LdmResnetBlockImpl::LdmResnetBlockImpl(int64_t in, int64_t out) {
  norm1 = register_module("norm1", ldm_norm(in));
  conv1 = register_module("conv1", ldm_conv(in, out, 3));
  norm2 = register_module("norm2", ldm_norm(out));
  conv2 = register_module("conv2", ldm_conv(out, out, 3));
  if (in != out) nin_shortcut = register_module("nin_shortcut", ldm_conv(in, out, 1));
}

torch::Tensor LdmResnetBlockImpl::forward(const torch::Tensor& x) {
  torch::Tensor h = conv1(torch::silu(norm1(x)));
  h = conv2(torch::silu(norm2(h)));
  return (nin_shortcut ? nin_shortcut(x) : x) + h;
}

LdmAttnBlockImpl::LdmAttnBlockImpl(int64_t c) {
  norm = register_module("norm", ldm_norm(c));
  q = register_module("q", ldm_conv(c, c, 1));
  k = register_module("k", ldm_conv(c, c, 1));
  v = register_module("v", ldm_conv(c, c, 1));
  proj_out = register_module("proj_out", ldm_conv(c, c, 1));
}

torch::Tensor LdmAttnBlockImpl::forward(const torch::Tensor& x) {
  const torch::Tensor h = norm(x);
  const int64_t B = x.size(0), C = x.size(1), H = x.size(2), W = x.size(3), N = H * W;
  const torch::Tensor qq = q(h).reshape({B, C, N}).permute({0, 2, 1});  // [B, N, C]
  const torch::Tensor kk = k(h).reshape({B, C, N});                     // [B, C, N]
  const torch::Tensor vv = v(h).reshape({B, C, N}).permute({0, 2, 1});  // [B, N, C]
  torch::Tensor out;  // [B, N, C]
#if TORCH_VERSION_MAJOR >= 2
  // LibTorch 2.x: the fused kernels (flash / memory-efficient), memory
  // linear in N, as the reference with xformers.
  out = at::scaled_dot_product_attention(qq.unsqueeze(1), kk.transpose(1, 2).unsqueeze(1), vv.unsqueeze(1)).squeeze(1);
#else
  // One attention over every latent pixel holds N^2 scores (a 512 px tile's
  // latent: 262144^2, 275 GB): queries in row blocks of about 256 MB of
  // scores, each row's softmax whole, the same numbers as the full matrix.
  const int64_t rows = std::max<int64_t>(1, (int64_t(64) << 20) / std::max<int64_t>(N, 1));
  std::vector<torch::Tensor> parts;
  for (int64_t a = 0; a < N; a += rows) {
    const torch::Tensor w = torch::softmax(torch::bmm(qq.slice(1, a, std::min(N, a + rows)), kk) * std::pow(double(C), -0.5), 2);
    parts.push_back(torch::bmm(w, vv));
  }
  out = parts.size() == 1 ? parts[0] : torch::cat(parts, 1);
#endif
  return x + proj_out(out.permute({0, 2, 1}).reshape({B, C, H, W}));
}

LdmMidImpl::LdmMidImpl(int64_t ch) {
  block_1 = register_module("block_1", LdmResnetBlock(ch, ch));
  attn_1 = register_module("attn_1", LdmAttnBlock(ch));
  block_2 = register_module("block_2", LdmResnetBlock(ch, ch));
}

torch::Tensor LdmMidImpl::forward(const torch::Tensor& x) { return block_2(attn_1(block_1(x))); }

LdmEncoderImpl::LdmEncoderImpl(const VqAutoencoderConfig& c) {
  conv_in = register_module("conv_in", ldm_conv(c.in_channels, c.ch, 3));
  down = register_module("down", torch::nn::ModuleList());
  int64_t res = c.resolution, block_in = c.ch;
  for (size_t i = 0; i < c.ch_mult.size(); ++i) {
    LdmLevel level;
    level->block = level->register_module("block", torch::nn::ModuleList());
    level->attn = level->register_module("attn", torch::nn::ModuleList());
    block_in = c.ch * (i == 0 ? 1 : c.ch_mult[i - 1]);
    const int64_t block_out = c.ch * c.ch_mult[i];
    for (int64_t j = 0; j < c.num_res_blocks; ++j) {
      level->block->push_back(LdmResnetBlock(block_in, block_out));
      block_in = block_out;
      if (ldm_attends(c, res)) level->attn->push_back(LdmAttnBlock(block_in));
    }
    if (i + 1 != c.ch_mult.size()) {
      auto ds = level->register_module("downsample", std::make_shared<torch::nn::Module>());
      level->resample = ds->register_module("conv", ldm_conv(block_in, block_in, 3, 2, 0));
      res /= 2;
    }
    down->push_back(level);
  }
  mid = register_module("mid", LdmMid(block_in));
  norm_out = register_module("norm_out", ldm_norm(block_in));
  conv_out = register_module("conv_out", ldm_conv(block_in, c.z_channels, 3));
}

torch::Tensor LdmEncoderImpl::forward(const torch::Tensor& x) {
  torch::Tensor h = conv_in(x);
  for (const auto& m : *down) {
    auto* level = m->as<LdmLevelImpl>();
    for (size_t j = 0; j < level->block->size(); ++j) {
      h = level->block[j]->as<LdmResnetBlockImpl>()->forward(h);
      if (!level->attn->is_empty()) h = level->attn[j]->as<LdmAttnBlockImpl>()->forward(h);
    }
    if (level->resample) h = level->resample(F::pad(h, F::PadFuncOptions({0, 1, 0, 1})));
  }
  return conv_out(torch::silu(norm_out(mid(h))));
}

LdmDecoderImpl::LdmDecoderImpl(const VqAutoencoderConfig& c) {
  const size_t n = c.ch_mult.size();
  int64_t block_in = c.ch * c.ch_mult[n - 1];
  int64_t res = c.resolution >> (n - 1);
  conv_in = register_module("conv_in", ldm_conv(c.z_channels, block_in, 3));
  mid = register_module("mid", LdmMid(block_in));
  // Built from the lowest resolution up, stored in level order (up.0 the largest).
  std::vector<LdmLevel> levels(n, LdmLevel(nullptr));
  for (size_t i = n; i-- > 0;) {
    LdmLevel level;
    level->block = level->register_module("block", torch::nn::ModuleList());
    level->attn = level->register_module("attn", torch::nn::ModuleList());
    const int64_t block_out = c.ch * c.ch_mult[i];
    for (int64_t j = 0; j <= c.num_res_blocks; ++j) {
      level->block->push_back(LdmResnetBlock(block_in, block_out));
      block_in = block_out;
      if (ldm_attends(c, res)) level->attn->push_back(LdmAttnBlock(block_in));
    }
    if (i != 0) {
      auto us = level->register_module("upsample", std::make_shared<torch::nn::Module>());
      level->resample = us->register_module("conv", ldm_conv(block_in, block_in, 3));
      res *= 2;
    }
    levels[i] = level;
  }
  up = register_module("up", torch::nn::ModuleList());
  for (auto& l : levels) up->push_back(l);
  norm_out = register_module("norm_out", ldm_norm(block_in));
  conv_out = register_module("conv_out", ldm_conv(block_in, c.out_ch, 3));
}

torch::Tensor LdmDecoderImpl::forward(const torch::Tensor& z) {
  torch::Tensor h = mid(conv_in(z));
  for (size_t i = up->size(); i-- > 0;) {
    auto* level = up[i]->as<LdmLevelImpl>();
    for (size_t j = 0; j < level->block->size(); ++j) {
      h = level->block[j]->as<LdmResnetBlockImpl>()->forward(h);
      if (!level->attn->is_empty()) h = level->attn[j]->as<LdmAttnBlockImpl>()->forward(h);
    }
    if (level->resample)
      h = level->resample(
          F::interpolate(h, F::InterpolateFuncOptions().scale_factor(std::vector<double>{2, 2}).mode(torch::kNearest)));
  }
  return conv_out(torch::silu(norm_out(h)));
}

VqAutoencoderImpl::VqAutoencoderImpl(const VqAutoencoderConfig& c) : config(c) {
  if (c.ch_mult.empty() || c.num_res_blocks < 1) throw_runtime("VQ autoencoder: ch_mult and num_res_blocks must be set");
  encoder = register_module("encoder", LdmEncoder(c));
  decoder = register_module("decoder", LdmDecoder(c));
  auto q = register_module("quantize", std::make_shared<torch::nn::Module>());
  codebook = q->register_module("embedding", torch::nn::Embedding(c.n_embed, c.embed_dim));
  quant_conv = register_module("quant_conv", ldm_conv(c.z_channels, c.embed_dim, 1));
  post_quant_conv = register_module("post_quant_conv", ldm_conv(c.embed_dim, c.z_channels, 1));
}

torch::Tensor VqAutoencoderImpl::encode(const torch::Tensor& x) { return quant_conv(encoder(x)); }

torch::Tensor VqAutoencoderImpl::quantize_latent(const torch::Tensor& h) {
  const int64_t B = h.size(0), C = h.size(1), H = h.size(2), W = h.size(3);
  const torch::Tensor e = codebook->weight.to(torch::kFloat);
  const torch::Tensor z = h.to(torch::kFloat).permute({0, 2, 3, 1}).reshape({-1, C});
  // In row blocks of 128 MB of distances: a 512 px tile's latent against
  // 8192 entries would be 8.6 GB at once.
  std::vector<torch::Tensor> idx;
  const torch::Tensor e2 = e.pow(2).sum(1);
  const int64_t rows = std::max<int64_t>(1, (int64_t(32) << 20) / std::max<int64_t>(e.size(0), 1));
  for (int64_t a = 0; a < z.size(0); a += rows) {
    const torch::Tensor zb = z.slice(0, a, std::min(z.size(0), a + rows));
    const torch::Tensor d = zb.pow(2).sum(1, true) + e2 - 2 * torch::matmul(zb, e.t());
    idx.push_back(d.argmin(1));
  }
  const torch::Tensor zq =
      codebook->weight.index({torch::cat(idx)}).view({B, H, W, C}).permute({0, 3, 1, 2}).contiguous().to(h.scalar_type());
  // The reference returns z + (z_q - z).detach() (its straight-through
  // estimator): not z_q to the last bit, and its gradient passes to z
  // unchanged (a loss on the decoded image trains what made the latent).
  return h + (zq - h).detach();
}

torch::Tensor VqAutoencoderImpl::decode(const torch::Tensor& h) {
  return decoder(post_quant_conv(quantize_latent(h)));
}

}  // namespace rass::nn
