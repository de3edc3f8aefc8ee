#include "rass/nn/unet.hpp"

#include <memory>
#include <string>

#include <torch/nn/functional/activation.h>
#include <torch/nn/modules/dropout.h>
#include <torch/torch.h>

#include "rass/core/error.hpp"
#include "rass/nn/activation_checkpoint.hpp"
#include "rass/nn/group_norm.hpp"

namespace F = torch::nn::functional;

namespace rass::nn {

namespace {

// GEGLU: proj to 2*inner, value * gelu(gate).
struct GEGLUImpl : torch::nn::Module {
  LoraLinear proj{nullptr};
  GEGLUImpl(int64_t in, int64_t inner) { proj = register_module("proj", LoraLinear(in, 2 * inner)); }
  torch::Tensor forward(const torch::Tensor& x) {
    auto parts = proj(x).chunk(2, -1);
    return parts[0] * F::gelu(parts[1]);
  }
};
TORCH_MODULE(GEGLU);

// FeedForward: net = [GEGLU, Dropout, Linear].
struct FeedForwardImpl : torch::nn::Module {
  torch::nn::ModuleList net;
  explicit FeedForwardImpl(int64_t dim) {
    net = register_module("net", torch::nn::ModuleList());
    net->push_back(GEGLU(dim, 4 * dim));
    net->push_back(torch::nn::Dropout(0.0));
    net->push_back(LoraLinear(4 * dim, dim));
  }
  torch::Tensor forward(const torch::Tensor& x) {
    return net[2]->as<LoraLinear>()->forward(net[0]->as<GEGLU>()->forward(x));
  }
};
TORCH_MODULE(FeedForward);

// BasicTransformerBlock (norm_type layer_norm): self-attention, cross-attention, GEGLU FF.
struct BasicTransformerBlockImpl : torch::nn::Module {
  torch::nn::LayerNorm norm1{nullptr}, norm2{nullptr}, norm3{nullptr};
  Attention attn1{nullptr}, attn2{nullptr};
  FeedForward ff{nullptr};
  BasicTransformerBlockImpl(int64_t dim, int64_t heads, int64_t head_dim, int64_t cross_dim, bool upcast) {
    auto ln = [&] { return torch::nn::LayerNorm(torch::nn::LayerNormOptions({dim}).eps(1e-5)); };
    norm1 = register_module("norm1", ln());
    attn1 = register_module("attn1", Attention(dim, 0, heads, head_dim, false, 0, 0, false, false));
    norm2 = register_module("norm2", ln());
    attn2 = register_module("attn2", Attention(dim, cross_dim, heads, head_dim, false, 0, 0, false, false));
    norm3 = register_module("norm3", ln());
    ff = register_module("ff", FeedForward(dim));
    attn1->upcast_attention = attn2->upcast_attention = upcast;
  }
  torch::Tensor forward(torch::Tensor h, const torch::Tensor& context, UNetCaptures* cap) {
    torch::Tensor p1, p2;
    const bool self = cap && cap->self_attention, cross = cap && cap->cross_attention;
    h = attn1(norm1(h), torch::Tensor(), self ? &p1 : nullptr) + h;
    if (self) cap->attention.push_back({attn1->path, p1});
    h = attn2(norm2(h), context, cross ? &p2 : nullptr) + h;
    if (cross) cap->attention.push_back({attn2->path, p2});
    return ff(norm3(h)) + h;
  }
};
TORCH_MODULE(BasicTransformerBlock);

ResnetBlock2D resnet(const UNetConfig& c, int64_t in, int64_t out, int64_t temb, double scale = 1.0) {
  return ResnetBlock2D(in, out, temb, c.norm_num_groups, c.norm_eps, scale);
}

// One resnet or attention block, checkpointed when asked (the module outlives
// the backward pass that recomputes it).
torch::Tensor run_resnet(const std::shared_ptr<torch::nn::Module>& m, const torch::Tensor& h, const torch::Tensor& temb,
                         bool ckpt) {
  auto* r = m->as<ResnetBlock2D>();
  if (!ckpt) return r->forward(h, temb);
  return checkpoint([r](const std::vector<torch::Tensor>& v) { return r->forward(v[0], v[1]); }, {h, temb},
                    has_trainable_parameters(*r));
}

torch::Tensor run_attention(const std::shared_ptr<torch::nn::Module>& m, const torch::Tensor& h,
                            const torch::Tensor& context, UNetCaptures* cap, bool ckpt) {
  auto* a = m->as<Transformer2D>();
  if (!ckpt) return a->forward(h, context, cap);
  if (!cap || (!cap->cross_attention && !cap->self_attention))
    return checkpoint([a](const std::vector<torch::Tensor>& v) { return a->forward(v[0], v[1], nullptr); },
                      {h, context}, has_trainable_parameters(*a));
  // The maps the capture records (SCR's loss) are outputs of the checkpointed
  // block beside its result: a loss on them backpropagates through the
  // block's replay, and the block keeps no inner activations either.
  const bool self = cap->self_attention, cross = cap->cross_attention;
  auto paths = std::make_shared<std::vector<std::string>>();
  const std::vector<torch::Tensor> out = checkpoint_outputs(
      [a, self, cross, paths](const std::vector<torch::Tensor>& v) {
        UNetCaptures local;
        local.self_attention = self;
        local.cross_attention = cross;
        std::vector<torch::Tensor> r{a->forward(v[0], v[1], &local)};
        paths->clear();
        for (auto& c : local.attention) {
          paths->push_back(c.path);
          r.push_back(c.probs);
        }
        return r;
      },
      {h, context}, has_trainable_parameters(*a));
  for (size_t i = 0; i < paths->size(); ++i) cap->attention.push_back({(*paths)[i], out.at(i + 1)});
  return out.at(0);
}

}  // namespace

torch::Tensor timestep_embedding(const torch::Tensor& timesteps, int64_t dim, bool flip, double shift, double max_period) {
  const int64_t half = dim / 2;
  auto opts = torch::TensorOptions().dtype(torch::kFloat).device(timesteps.device());
  torch::Tensor exponent = -std::log(max_period) * torch::arange(0, half, opts) / (double(half) - shift);
  torch::Tensor emb = timesteps.to(torch::kFloat).unsqueeze(1) * exponent.exp().unsqueeze(0);
  emb = torch::cat({emb.sin(), emb.cos()}, -1);
  if (flip) emb = torch::cat({emb.slice(1, half), emb.slice(1, 0, half)}, -1);
  if (dim % 2 == 1) emb = F::pad(emb, F::PadFuncOptions({0, 1, 0, 0}));
  return emb;
}

Transformer2DImpl::Transformer2DImpl(int64_t ch, int64_t heads, int64_t layers, int64_t cross_dim, int64_t groups,
                                     bool linear, bool upcast)
    : linear_projection(linear) {
  norm = register_module("norm", rass::nn::GroupNorm(torch::nn::GroupNormOptions(groups, ch).eps(1e-6)));
  if (linear) proj_in_linear = register_module("proj_in", LoraLinear(ch, ch));
  else proj_in_conv = register_module("proj_in", LoraConv2d(ch, ch, 1, 1, 0));
  transformer_blocks = register_module("transformer_blocks", torch::nn::ModuleList());
  for (int64_t i = 0; i < layers; ++i)
    transformer_blocks->push_back(BasicTransformerBlock(ch, heads, ch / heads, cross_dim, upcast));
  if (linear) proj_out_linear = register_module("proj_out", LoraLinear(ch, ch));
  else proj_out_conv = register_module("proj_out", LoraConv2d(ch, ch, 1, 1, 0));
}

torch::Tensor Transformer2DImpl::forward(const torch::Tensor& x, const torch::Tensor& context, UNetCaptures* cap) {
  const int64_t b = x.size(0), c = x.size(1), h = x.size(2), w = x.size(3);
  torch::Tensor t = norm(x);
  if (linear_projection) {
    t = proj_in_linear(t.permute({0, 2, 3, 1}).reshape({b, h * w, c}));
  } else {
    t = proj_in_conv(t);
    t = t.permute({0, 2, 3, 1}).reshape({b, h * w, c});
  }
  for (auto& blk : *transformer_blocks) t = blk->as<BasicTransformerBlock>()->forward(t, context, cap);
  if (linear_projection) {
    t = proj_out_linear(t).reshape({b, h, w, c}).permute({0, 3, 1, 2}).contiguous();
  } else {
    t = proj_out_conv(t.reshape({b, h, w, c}).permute({0, 3, 1, 2}).contiguous());
  }
  return t + x;
}

torch::Tensor UNetBlockImpl::forward_down(torch::Tensor h, const torch::Tensor& temb, const torch::Tensor& context,
                                          std::vector<torch::Tensor>& skips, UNetCaptures* cap) {
  for (size_t i = 0; i < resnets->size(); ++i) {
    h = run_resnet(resnets[i], h, temb, gradient_checkpointing);
    if (attentions) h = run_attention(attentions[i], h, context, cap, gradient_checkpointing);
    skips.push_back(h);
  }
  if (samplers) {
    h = samplers[0]->as<Downsample2D>()->forward(h);
    skips.push_back(h);
  }
  return h;
}

torch::Tensor UNetBlockImpl::forward_up(torch::Tensor h, const torch::Tensor& temb, const torch::Tensor& context,
                                        std::vector<torch::Tensor>& skips, c10::optional<std::vector<int64_t>> size,
                                        UNetCaptures* cap) {
  for (size_t i = 0; i < resnets->size(); ++i) {
    h = torch::cat({h, skips.back()}, 1);
    skips.pop_back();
    h = run_resnet(resnets[i], h, temb, gradient_checkpointing);
    if (attentions) h = run_attention(attentions[i], h, context, cap, gradient_checkpointing);
  }
  if (samplers) h = samplers[0]->as<Upsample2D>()->forward(h, size);
  return h;
}

UNet2DConditionImpl::UNet2DConditionImpl(const UNetConfig& c) : config(c) {
  const auto& ch = c.block_out_channels;
  const size_t n = ch.size();
  if (c.down_block_types.size() != n || c.up_block_types.size() != n || c.num_attention_heads.size() != n ||
      c.transformer_layers_per_block.size() != n)
    throw Error(ExitCode::bad_input, "UNet config: block lists differ in length");
  const int64_t temb = ch[0] * 4;
  conv_in = register_module("conv_in", LoraConv2d(c.in_channels, ch[0], 3, 1, 1));
  time_embedding = register_module("time_embedding", std::make_shared<torch::nn::Module>());
  time_linear_1 = time_embedding->register_module("linear_1", LoraLinear(ch[0], temb));
  time_linear_2 = time_embedding->register_module("linear_2", LoraLinear(temb, temb));

  down_blocks = register_module("down_blocks", torch::nn::ModuleList());
  int64_t out = ch[0];
  for (size_t i = 0; i < n; ++i) {
    const int64_t in = out;
    out = ch[i];
    const bool cross = c.down_block_types[i] == "CrossAttnDownBlock2D";
    if (!cross && c.down_block_types[i] != "DownBlock2D")
      throw Error(ExitCode::bad_input, "UNet config: unsupported down block '" + c.down_block_types[i] + "'");
    auto blk = UNetBlock();
    blk->resnets = blk->register_module("resnets", torch::nn::ModuleList());
    if (cross) blk->attentions = blk->register_module("attentions", torch::nn::ModuleList());
    for (int64_t l = 0; l < c.layers_per_block; ++l) {
      blk->resnets->push_back(resnet(c, l == 0 ? in : out, out, temb));
      if (cross)
        blk->attentions->push_back(Transformer2D(out, c.num_attention_heads[i], c.transformer_layers_per_block[i],
                                                 c.cross_attention_dim, c.norm_num_groups, c.use_linear_projection,
                                                 c.upcast_attention));
    }
    if (i + 1 < n) {
      blk->samplers = blk->register_module("downsamplers", torch::nn::ModuleList());
      blk->samplers->push_back(Downsample2D(out, out, c.downsample_padding));
    }
    down_blocks->push_back(blk);
  }

  mid_block = register_module("mid_block", std::make_shared<torch::nn::Module>());
  mid_attentions = mid_block->register_module("attentions", torch::nn::ModuleList());
  mid_resnets = mid_block->register_module("resnets", torch::nn::ModuleList());
  mid_resnets->push_back(resnet(c, ch.back(), ch.back(), temb, c.mid_block_scale_factor));
  mid_attentions->push_back(Transformer2D(ch.back(), c.num_attention_heads.back(), c.transformer_layers_per_block.back(),
                                          c.cross_attention_dim, c.norm_num_groups, c.use_linear_projection,
                                          c.upcast_attention));
  mid_resnets->push_back(resnet(c, ch.back(), ch.back(), temb, c.mid_block_scale_factor));

  up_blocks = register_module("up_blocks", torch::nn::ModuleList());
  out = ch.back();
  for (size_t i = 0; i < n; ++i) {
    const int64_t prev = out;
    out = ch[n - 1 - i];
    const int64_t in = ch[n - 1 - std::min(i + 1, n - 1)];
    const bool cross = c.up_block_types[i] == "CrossAttnUpBlock2D";
    if (!cross && c.up_block_types[i] != "UpBlock2D")
      throw Error(ExitCode::bad_input, "UNet config: unsupported up block '" + c.up_block_types[i] + "'");
    auto blk = UNetBlock();
    blk->up = true;
    blk->resnets = blk->register_module("resnets", torch::nn::ModuleList());
    if (cross) blk->attentions = blk->register_module("attentions", torch::nn::ModuleList());
    const int64_t layers = c.layers_per_block + 1;
    for (int64_t l = 0; l < layers; ++l) {
      const int64_t skip = l == layers - 1 ? in : out;
      const int64_t res_in = l == 0 ? prev : out;
      blk->resnets->push_back(resnet(c, res_in + skip, out, temb));
      if (cross)
        blk->attentions->push_back(Transformer2D(out, c.num_attention_heads[n - 1 - i],
                                                 c.transformer_layers_per_block[n - 1 - i], c.cross_attention_dim,
                                                 c.norm_num_groups, c.use_linear_projection, c.upcast_attention));
    }
    if (i + 1 < n) {
      blk->samplers = blk->register_module("upsamplers", torch::nn::ModuleList());
      blk->samplers->push_back(Upsample2D(out, out));
    }
    up_blocks->push_back(blk);
  }
  conv_norm_out = register_module("conv_norm_out",
                                  rass::nn::GroupNorm(torch::nn::GroupNormOptions(c.norm_num_groups, ch[0]).eps(c.norm_eps)));
  conv_out = register_module("conv_out", LoraConv2d(ch[0], c.out_channels, 3, 1, 1));
  for (const auto& m : named_modules("", false))
    if (auto* a = dynamic_cast<AttentionImpl*>(m.value().get())) a->path = m.key();
}

void UNet2DConditionImpl::set_gradient_checkpointing(bool on) {
  gradient_checkpointing = on;
  for (auto& b : *down_blocks) b->as<UNetBlock>()->gradient_checkpointing = on;
  for (auto& b : *up_blocks) b->as<UNetBlock>()->gradient_checkpointing = on;
}

torch::Tensor UNet2DConditionImpl::forward(const torch::Tensor& sample, const torch::Tensor& timesteps,
                                           const torch::Tensor& context_in, UNetCaptures* cap) {
  if (cap) {
    cap->attention.clear();
    cap->up_block_outputs.clear();
  }
  const auto& ch = config.block_out_channels;
  torch::Tensor t = timesteps.dim() == 0 ? timesteps.expand({sample.size(0)}) : timesteps;
  if (t.size(0) == 1 && sample.size(0) > 1) t = t.expand({sample.size(0)});
  // One prompt for several samples (an image's latent tiles) is broadcast, as the timestep is.
  const torch::Tensor context =
      context_in.size(0) == 1 && sample.size(0) > 1 ? context_in.expand({sample.size(0), -1, -1}) : context_in;
  torch::Tensor temb = timestep_embedding(t, ch[0], config.flip_sin_to_cos, config.freq_shift).to(sample.scalar_type());
  temb = time_linear_2(F::silu(time_linear_1(temb)));

  // Sizes that are not multiples of 2^(levels-1) make the upsamplers follow the skip sizes.
  const int64_t factor = int64_t(1) << (ch.size() - 1);
  const bool forward_size = sample.size(2) % factor != 0 || sample.size(3) % factor != 0;

  torch::Tensor h = conv_in(sample);
  std::vector<torch::Tensor> skips{h};
  for (auto& b : *down_blocks) h = b->as<UNetBlock>()->forward_down(h, temb, context, skips, cap);
  h = run_resnet(mid_resnets[0], h, temb, gradient_checkpointing);
  h = run_attention(mid_attentions[0], h, context, cap, gradient_checkpointing);
  h = run_resnet(mid_resnets[1], h, temb, gradient_checkpointing);
  for (size_t i = 0; i < up_blocks->size(); ++i) {
    auto blk = up_blocks[i]->as<UNetBlock>();
    c10::optional<std::vector<int64_t>> size;
    const size_t used = blk->resnets->size();
    if (forward_size && i + 1 < up_blocks->size()) {
      const torch::Tensor& next_skip = skips[skips.size() - used - 1];
      size = std::vector<int64_t>{next_skip.size(2), next_skip.size(3)};
    }
    h = blk->forward_up(h, temb, context, skips, size, cap);
    if (cap && cap->up_blocks) cap->up_block_outputs.push_back(h);
  }
  return conv_out(conv_norm_out->forward_silu(h));
}

}  // namespace rass::nn
