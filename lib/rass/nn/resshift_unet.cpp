#include "rass/nn/resshift_unet.hpp"

#include <cmath>

#include <torch/nn/functional/activation.h>
#include <torch/nn/functional/upsampling.h>
#include <torch/torch.h>

#include "rass/core/error.hpp"

namespace F = torch::nn::functional;
using torch::indexing::None;
using torch::indexing::Slice;

namespace rass::nn {

namespace {

// A child named like a Python attribute that holds numbered children
// (in_layers.0, time_embed.2): a plain module whose own names are the indices.
std::shared_ptr<torch::nn::Module> resshift_holder(torch::nn::Module& parent, const std::string& name) {
  return parent.register_module(name, std::make_shared<torch::nn::Module>());
}

torch::nn::Conv2d resshift_conv(int64_t in, int64_t out, int64_t k, int64_t stride = 1, int64_t pad = -1) {
  return torch::nn::Conv2d(torch::nn::Conv2dOptions(in, out, k).stride(stride).padding(pad < 0 ? k / 2 : pad));
}

}  // namespace

GroupNorm32Impl::GroupNorm32Impl(int64_t channels, double eps)
    : torch::nn::GroupNormImpl(torch::nn::GroupNormOptions(32, channels).eps(eps)) {}

torch::Tensor GroupNorm32Impl::forward(const torch::Tensor& x) {
  if (x.scalar_type() == torch::kFloat) return torch::nn::GroupNormImpl::forward(x);
  return torch::group_norm(x.to(torch::kFloat), options.num_groups(), weight.to(torch::kFloat), bias.to(torch::kFloat),
                           options.eps())
      .to(x.scalar_type());
}

torch::Tensor resshift_timestep_embedding(const torch::Tensor& t, int64_t dim) {
  const int64_t half = dim / 2;
  const torch::Tensor freqs =
      torch::exp(-std::log(10000.0) * torch::arange(0, half, torch::TensorOptions().dtype(torch::kFloat)) / double(half))
          .to(t.device());
  const torch::Tensor args = t.to(torch::kFloat).unsqueeze(1) * freqs.unsqueeze(0);
  torch::Tensor e = torch::cat({torch::cos(args), torch::sin(args)}, -1);
  if (dim % 2) e = torch::cat({e, torch::zeros_like(e.slice(1, 0, 1))}, -1);
  return e;
}

ResShiftResBlockImpl::ResShiftResBlockImpl(int64_t channels, int64_t emb_channels, int64_t out_channels,
                                           bool scale_shift_, int updown_)
    : scale_shift(scale_shift_), updown(updown_) {
  auto in_layers = resshift_holder(*this, "in_layers");
  in_norm = in_layers->register_module("0", GroupNorm32(channels));
  in_conv = in_layers->register_module("2", resshift_conv(channels, out_channels, 3));
  auto emb_layers = resshift_holder(*this, "emb_layers");
  emb_linear = emb_layers->register_module("1", Linear(emb_channels, scale_shift ? 2 * out_channels : out_channels));
  auto out_layers = resshift_holder(*this, "out_layers");
  out_norm = out_layers->register_module("0", GroupNorm32(out_channels));
  out_conv = out_layers->register_module("3", resshift_conv(out_channels, out_channels, 3));
  // use_conv is never set by UNetModelSwin: a 1x1 skip when the widths differ.
  if (out_channels != channels) skip = register_module("skip_connection", resshift_conv(channels, out_channels, 1));
}

torch::Tensor ResShiftResBlockImpl::forward(const torch::Tensor& x_in, const torch::Tensor& emb) {
  torch::Tensor x = x_in;
  torch::Tensor h = torch::silu(in_norm(x));
  if (updown > 0) {
    h = F::interpolate(h, F::InterpolateFuncOptions().scale_factor(std::vector<double>{2, 2}).mode(torch::kNearest));
    x = F::interpolate(x, F::InterpolateFuncOptions().scale_factor(std::vector<double>{2, 2}).mode(torch::kNearest));
  } else if (updown < 0) {
    h = torch::avg_pool2d(h, 2, 2);
    x = torch::avg_pool2d(x, 2, 2);
  }
  h = in_conv(h);
  torch::Tensor e = emb_linear(torch::silu(emb)).to(h.scalar_type()).unsqueeze(-1).unsqueeze(-1);
  if (scale_shift) {
    const auto parts = e.chunk(2, 1);
    h = out_norm(h) * (1 + parts[0]) + parts[1];
    h = out_conv(torch::silu(h));
  } else {
    h = out_conv(torch::silu(out_norm(h + e)));
  }
  return (skip ? skip(x) : x) + h;
}

SwinWindowAttentionImpl::SwinWindowAttentionImpl(int64_t dim, int64_t window_, int64_t heads_)
    : window(window_), heads(heads_) {
  relative_position_bias_table =
      register_parameter("relative_position_bias_table", torch::zeros({(2 * window - 1) * (2 * window - 1), heads}));
  // Index of the (dy, dx) pair of tokens i, j of a window, row-major.
  const torch::Tensor r = torch::arange(window, torch::kLong);
  const auto grid = torch::meshgrid({r, r}, "ij");
  const torch::Tensor flat = torch::stack({grid[0].flatten(), grid[1].flatten()});  // [2, N]
  torch::Tensor rel = (flat.unsqueeze(2) - flat.unsqueeze(1)).permute({1, 2, 0}).contiguous();  // [N, N, 2]
  rel.select(2, 0).add_(window - 1).mul_(2 * window - 1);
  rel.select(2, 1).add_(window - 1);
  relative_position_index = rel.sum(-1);
  qkv = register_module("qkv", Linear(dim, 3 * dim));
  proj = register_module("proj", Linear(dim, dim));
}

torch::Tensor SwinWindowAttentionImpl::forward(const torch::Tensor& x, const torch::Tensor& mask) {
  const int64_t B = x.size(0), N = x.size(1), C = x.size(2);
  const torch::Tensor qkv_ = qkv(x).reshape({B, N, 3, heads, C / heads}).permute({2, 0, 3, 1, 4});
  const torch::Tensor q = qkv_[0] * std::pow(double(C / heads), -0.5);
  torch::Tensor attn = torch::matmul(q, qkv_[1].transpose(-2, -1));
  const torch::Tensor bias = relative_position_bias_table.index({relative_position_index.to(x.device()).view(-1)})
                                 .view({N, N, -1})
                                 .permute({2, 0, 1})
                                 .unsqueeze(0);
  attn = attn + bias.to(attn.scalar_type());
  if (mask.defined()) {
    const int64_t nW = mask.size(0);
    attn = (attn.view({B / nW, nW, heads, N, N}) + mask.to(attn.scalar_type()).unsqueeze(1).unsqueeze(0))
               .view({-1, heads, N, N});
  }
  attn = torch::softmax(attn, -1);
  return proj(torch::matmul(attn, qkv_[2]).transpose(1, 2).reshape({B, N, C}));
}

namespace {

// window_partition / window_reverse of swin_transformer.py on [B, C, H, W].
torch::Tensor swin_partition(const torch::Tensor& x, int64_t w) {
  const int64_t B = x.size(0), C = x.size(1), H = x.size(2), W = x.size(3);
  return x.view({B, C, H / w, w, W / w, w}).permute({0, 2, 4, 3, 5, 1}).contiguous().view({-1, w, w, C});
}
torch::Tensor swin_reverse(const torch::Tensor& windows, int64_t w, int64_t H, int64_t W) {
  const int64_t B = windows.size(0) / ((H / w) * (W / w));
  return windows.view({B, H / w, W / w, w, w, -1}).permute({0, 5, 1, 3, 2, 4}).contiguous().view({B, -1, H, W});
}

}  // namespace

torch::Tensor swin_shift_mask(int64_t H, int64_t W, int64_t w, int64_t s) {
  // As calculate_mask: its img_mask[:, h, w, :] on a [1, 1, H, W] array
  // slices dimensions 1 (size 1) and 2 (the rows); kept as it is.
  torch::Tensor img = torch::zeros({1, 1, H, W});
  const std::vector<Slice> slices{Slice(0, -w), Slice(-w, -s), Slice(-s, None)};
  double cnt = 0;
  for (const Slice& a : slices)
    for (const Slice& b : slices) {
      img.index_put_({Slice(), a, b, Slice()}, cnt);
      cnt += 1;
    }
  const torch::Tensor mw = swin_partition(img, w).permute({0, 2, 3, 1}).contiguous().view({-1, w * w});
  const torch::Tensor m = mw.unsqueeze(1) - mw.unsqueeze(2);
  return torch::zeros_like(m).masked_fill(m != 0, -100.0);
}

SwinBlockImpl::SwinBlockImpl(int64_t dim, int64_t level_size, int64_t heads, int64_t window_, int64_t shift_,
                             double mlp_ratio)
    : window(window_), shift(shift_) {
  if (level_size <= window) shift = 0, window = level_size;
  norm1 = register_module("norm1", GroupNorm32(dim));
  attn = register_module("attn", SwinWindowAttention(dim, window, heads));
  norm2 = register_module("norm2", GroupNorm32(dim));
  auto mlp = resshift_holder(*this, "mlp");
  const int64_t hidden = int64_t(double(dim) * mlp_ratio);
  fc1 = mlp->register_module("fc1", resshift_conv(dim, hidden, 1));
  fc2 = mlp->register_module("fc2", resshift_conv(hidden, dim, 1));
}

torch::Tensor SwinBlockImpl::forward(const torch::Tensor& x) {
  const int64_t C = x.size(1), H = x.size(2), W = x.size(3);
  if (H % window != 0 || W % window != 0)
    throw_runtime("Swin block: input " + std::to_string(H) + "x" + std::to_string(W) + " is not a multiple of its window " +
                  std::to_string(window));
  torch::Tensor h = norm1(x);
  if (shift > 0) h = torch::roll(h, {-shift, -shift}, {2, 3});
  torch::Tensor mask;
  // With no shift the reference's mask is all zeros: no mask.
  if (shift > 0) mask = swin_shift_mask(H, W, window, shift).to(x.device());
  torch::Tensor a = attn(swin_partition(h, window).view({-1, window * window, C}), mask);
  h = swin_reverse(a.view({-1, window, window, C}), window, H, W);
  if (shift > 0) h = torch::roll(h, {shift, shift}, {2, 3});
  const torch::Tensor y = x + h;
  return y + fc2(torch::gelu(fc1(norm2(y))));
}

SwinLayerImpl::SwinLayerImpl(int64_t in_chans, const ResShiftUNetConfig& c, int64_t level_size) {
  auto pe = resshift_holder(*this, "patch_embed");
  embed = pe->register_module("proj", resshift_conv(in_chans, c.swin_embed_dim, 1));
  if (c.patch_norm) embed_norm = pe->register_module("norm", GroupNorm32(c.swin_embed_dim));
  blocks = register_module("blocks", torch::nn::ModuleList());
  for (int64_t i = 0; i < c.swin_depth; ++i)
    blocks->push_back(
        SwinBlock(c.swin_embed_dim, level_size, c.swin_heads(), c.window_size, i % 2 ? c.window_size / 2 : 0, c.mlp_ratio));
  auto pu = resshift_holder(*this, "patch_unembed");
  unembed = pu->register_module("proj", resshift_conv(c.swin_embed_dim, in_chans, 1));
  if (c.patch_norm) unembed_norm = pu->register_module("norm", GroupNorm32(in_chans));
}

torch::Tensor SwinLayerImpl::forward(const torch::Tensor& x) {
  torch::Tensor h = embed(x);
  if (embed_norm) h = embed_norm(h);
  for (const auto& b : *blocks) h = b->as<SwinBlockImpl>()->forward(h);
  h = unembed(h);
  if (unembed_norm) h = unembed_norm(h);
  return h;
}

void ResShiftSequentialImpl::add(Kind kind, std::shared_ptr<torch::nn::Module> m) {
  register_module(std::to_string(items.size()), m);
  items.emplace_back(kind, std::move(m));
}

torch::Tensor ResShiftSequentialImpl::forward(torch::Tensor x, const torch::Tensor& emb) {
  for (auto& [kind, m] : items) {
    switch (kind) {
      case Kind::conv: x = m->as<torch::nn::Conv2dImpl>()->forward(x); break;
      case Kind::resblock: x = m->as<ResShiftResBlockImpl>()->forward(x, emb); break;
      case Kind::swin: x = m->as<SwinLayerImpl>()->forward(x); break;
      case Kind::down:
        x = m->children().empty() ? torch::avg_pool2d(x, 2, 2)
                                  : m->named_children()["op"]->as<torch::nn::Conv2dImpl>()->forward(x);
        break;
      case Kind::up:
        x = F::interpolate(x, F::InterpolateFuncOptions().scale_factor(std::vector<double>{2, 2}).mode(torch::kNearest));
        if (!m->children().empty()) x = m->named_children()["conv"]->as<torch::nn::Conv2dImpl>()->forward(x);
        break;
    }
  }
  return x;
}

ResShiftUNetImpl::ResShiftUNetImpl(const ResShiftUNetConfig& c) : config(c) {
  using Kind = ResShiftSequentialImpl::Kind;
  const size_t levels = c.channel_mult.size();
  if (levels == 0 || c.num_res_blocks.size() != levels)
    throw_runtime("ResShift UNet: channel_mult and num_res_blocks must have one entry per level");
  const int64_t mc = c.model_channels, emb_dim = 4 * mc;
  auto te = resshift_holder(*this, "time_embed");
  time0 = te->register_module("0", torch::nn::Linear(mc, emb_dim));
  time2 = te->register_module("2", torch::nn::Linear(emb_dim, emb_dim));
  auto attends = [&](int64_t ds) {
    for (int64_t r : c.attention_resolutions)
      if (r == ds) return true;
    return false;
  };
  auto sampler = [&](bool up, int64_t ch) {
    auto m = std::make_shared<torch::nn::Module>();
    if (up) {
      if (c.conv_resample) m->register_module("conv", resshift_conv(ch, ch, 3));
    } else if (c.conv_resample) {
      m->register_module("op", resshift_conv(ch, ch, 3, 2, 1));
    }
    return m;
  };
  input_blocks = register_module("input_blocks", torch::nn::ModuleList());
  int64_t ch = c.channel_mult[0] * mc;
  const int64_t input_ch = ch;
  {
    ResShiftSequential first;
    first->add(Kind::conv, resshift_conv(c.in_channels, ch, 3).ptr());
    input_blocks->push_back(first);
  }
  std::vector<int64_t> chans{ch};
  int64_t ds = c.image_size;
  for (size_t level = 0; level < levels; ++level) {
    for (int64_t j = 0; j < c.num_res_blocks[level]; ++j) {
      ResShiftSequential s;
      const int64_t out = c.channel_mult[level] * mc;
      s->add(Kind::resblock, ResShiftResBlock(ch, emb_dim, out, c.use_scale_shift_norm, 0).ptr());
      ch = out;
      if (attends(ds) && j == 0) s->add(Kind::swin, SwinLayer(ch, c, ds).ptr());
      input_blocks->push_back(s);
      chans.push_back(ch);
    }
    if (level + 1 != levels) {
      ResShiftSequential s;
      if (c.resblock_updown)
        s->add(Kind::resblock, ResShiftResBlock(ch, emb_dim, ch, c.use_scale_shift_norm, -1).ptr());
      else
        s->add(Kind::down, sampler(false, ch));
      input_blocks->push_back(s);
      chans.push_back(ch);
      ds /= 2;
    }
  }
  middle_block = register_module("middle_block", ResShiftSequential());
  middle_block->add(Kind::resblock, ResShiftResBlock(ch, emb_dim, ch, c.use_scale_shift_norm, 0).ptr());
  middle_block->add(Kind::swin, SwinLayer(ch, c, ds).ptr());
  middle_block->add(Kind::resblock, ResShiftResBlock(ch, emb_dim, ch, c.use_scale_shift_norm, 0).ptr());
  output_blocks = register_module("output_blocks", torch::nn::ModuleList());
  for (size_t lv = levels; lv-- > 0;) {
    for (int64_t i = 0; i <= c.num_res_blocks[lv]; ++i) {
      const int64_t ich = chans.back();
      chans.pop_back();
      ResShiftSequential s;
      const int64_t out = mc * c.channel_mult[lv];
      s->add(Kind::resblock, ResShiftResBlock(ch + ich, emb_dim, out, c.use_scale_shift_norm, 0).ptr());
      ch = out;
      if (attends(ds) && i == 0) s->add(Kind::swin, SwinLayer(ch, c, ds).ptr());
      if (lv > 0 && i == c.num_res_blocks[lv]) {
        if (c.resblock_updown)
          s->add(Kind::resblock, ResShiftResBlock(ch, emb_dim, ch, c.use_scale_shift_norm, 1).ptr());
        else
          s->add(Kind::up, sampler(true, ch));
        ds *= 2;
      }
      output_blocks->push_back(s);
    }
  }
  auto o = resshift_holder(*this, "out");
  out_norm = o->register_module("0", GroupNorm32(ch));
  out_conv = o->register_module("2", resshift_conv(input_ch, c.out_channels, 3));
}

void ResShiftUNetImpl::keep_float32_parts() {
  for (const auto& m : modules(/*include_self=*/false))
    if (dynamic_cast<GroupNorm32Impl*>(m.get())) m->to(torch::kFloat);
  time0->to(torch::kFloat);
  time2->to(torch::kFloat);
  out_conv->to(torch::kFloat);
}

int64_t ResShiftUNetImpl::size_multiple() const {
  return config.window_size << (int64_t(config.channel_mult.size()) - 1);
}

torch::Tensor ResShiftUNetImpl::forward(const torch::Tensor& x, const torch::Tensor& t, const torch::Tensor& lq) {
  // The blocks' dtype (the first convolution's); time_embed and the head may be float32.
  const auto blocks_dtype =
      input_blocks[0]->as<ResShiftSequentialImpl>()->items[0].second->as<torch::nn::Conv2dImpl>()->weight.scalar_type();
  const torch::Tensor emb =
      time2(torch::silu(time0(resshift_timestep_embedding(t, config.model_channels).to(time0->weight.scalar_type()))))
          .to(blocks_dtype);
  if (lq.sizes().slice(2) != x.sizes().slice(2))
    throw_runtime("ResShift UNet: the low-resolution image is not the latent's size");
  torch::Tensor h = torch::cat({x, lq.to(x.scalar_type())}, 1).to(blocks_dtype);
  std::vector<torch::Tensor> hs;
  for (const auto& m : *input_blocks) {
    h = m->as<ResShiftSequentialImpl>()->forward(h, emb);
    hs.push_back(h);
  }
  h = middle_block(h, emb);
  for (const auto& m : *output_blocks) {
    h = torch::cat({h, hs.back()}, 1);
    hs.pop_back();
    h = m->as<ResShiftSequentialImpl>()->forward(h, emb);
  }
  h = h.to(x.scalar_type());  // the head in the input's dtype (float32 in the reference's fp16 run)
  return out_conv(torch::silu(out_norm(h.to(out_conv->weight.scalar_type()))));
}

}  // namespace rass::nn
