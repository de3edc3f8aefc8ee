#include "rass/nn/vae.hpp"

#include <torch/nn/functional/activation.h>

#include "rass/nn/activation_checkpoint.hpp"
#include "rass/nn/group_norm.hpp"

namespace F = torch::nn::functional;

namespace rass::nn {

namespace {
constexpr double kEps = 1e-6;  // every norm of the VAE

// m->forward(x), recomputed in the backward pass when `ckpt` (the module
// outlives the backward pass that replays it).
template <class M>
torch::Tensor run_unit(M* m, torch::Tensor x, bool ckpt) {
  if (!ckpt) return m->forward(std::move(x));
  return checkpoint([m](const std::vector<torch::Tensor>& v) { return m->forward(v[0]); }, {x},
                    has_trainable_parameters(*m));
}

// DownEncoderBlock2D / UpDecoderBlock2D: a module with "resnets" and an optional
// "downsamplers" / "upsamplers" list of one.
struct SamplerBlockImpl : torch::nn::Module {
  torch::nn::ModuleList resnets, samplers{nullptr};  // a default ModuleList holder is not null
  bool down;
  SamplerBlockImpl(int64_t in, int64_t out, int64_t layers, int64_t groups, bool add_sampler, bool down_block)
      : down(down_block) {
    resnets = register_module("resnets", torch::nn::ModuleList());
    for (int64_t i = 0; i < layers; ++i) resnets->push_back(ResnetBlock2D(i == 0 ? in : out, out, 0, groups, kEps));
    if (add_sampler) {
      samplers = register_module(down ? "downsamplers" : "upsamplers", torch::nn::ModuleList());
      if (down) samplers->push_back(Downsample2D(out, out, 0));
      else samplers->push_back(Upsample2D(out, out));
    }
  }
  torch::Tensor forward(torch::Tensor x, bool ckpt = false) {
    for (auto& r : *resnets) x = run_unit(r->as<ResnetBlock2D>(), std::move(x), ckpt);
    if (samplers) {
      if (down) x = run_unit(samplers[0]->as<Downsample2D>(), std::move(x), ckpt);
      else x = run_unit(samplers[0]->as<Upsample2D>(), std::move(x), ckpt);
    }
    return x;
  }
};
TORCH_MODULE(SamplerBlock);
}  // namespace

VaeMidBlockImpl::VaeMidBlockImpl(int64_t ch, int64_t groups, bool attention) {
  resnets = register_module("resnets", torch::nn::ModuleList());
  attentions = register_module("attentions", torch::nn::ModuleList());
  resnets->push_back(ResnetBlock2D(ch, ch, 0, groups, kEps));
  // One head of size `ch` (attention_head_dim = channels), residual, softmax upcast.
  if (attention) attentions->push_back(Attention(ch, 0, 1, ch, true, groups, kEps, true, true));
  resnets->push_back(ResnetBlock2D(ch, ch, 0, groups, kEps));
}

torch::Tensor VaeMidBlockImpl::forward(torch::Tensor x, bool ckpt) {
  x = run_unit(resnets[0]->as<ResnetBlock2D>(), std::move(x), ckpt);
  if (!attentions->is_empty()) x = run_unit(attentions[0]->as<Attention>(), std::move(x), ckpt);
  return run_unit(resnets[1]->as<ResnetBlock2D>(), std::move(x), ckpt);
}

VaeEncoderImpl::VaeEncoderImpl(const VaeConfig& c) {
  const auto& ch = c.block_out_channels;
  conv_in = register_module("conv_in", LoraConv2d(c.in_channels, ch[0], 3, 1, 1));
  down_blocks = register_module("down_blocks", torch::nn::ModuleList());
  int64_t out = ch[0];
  for (size_t i = 0; i < ch.size(); ++i) {
    const int64_t in = out;
    out = ch[i];
    down_blocks->push_back(SamplerBlock(in, out, c.layers_per_block, c.norm_num_groups, i + 1 < ch.size(), true));
  }
  mid_block = register_module("mid_block", VaeMidBlock(ch.back(), c.norm_num_groups, c.mid_block_add_attention));
  conv_norm_out = register_module("conv_norm_out",
                                  rass::nn::GroupNorm(torch::nn::GroupNormOptions(c.norm_num_groups, ch.back()).eps(kEps)));
  // double_z: mean and log-variance.
  conv_out = register_module("conv_out", LoraConv2d(ch.back(), 2 * c.latent_channels, 3, 1, 1));
}

torch::Tensor VaeEncoderImpl::forward(torch::Tensor x, std::vector<torch::Tensor>* down_outputs) {
  x = conv_in(x);
  if (down_outputs) down_outputs->clear();
  for (auto& b : *down_blocks) {
    // Moved: a block's input is freed as its first resnet is done, not held
    // here through the whole block (the tiled VAE's waiting tiles held it on
    // the device, 2.5 GB at a 2048 px decoder's last level).
    x = b->as<SamplerBlock>()->forward(down_outputs ? x : std::move(x), gradient_checkpointing);
    if (down_outputs) down_outputs->push_back(x);
  }
  x = mid_block->forward(std::move(x), gradient_checkpointing);
  return conv_out(group_norm_silu(conv_norm_out, x));
}

VaeDecoderImpl::VaeDecoderImpl(const VaeConfig& c) {
  const auto& ch = c.block_out_channels;
  conv_in = register_module("conv_in", LoraConv2d(c.latent_channels, ch.back(), 3, 1, 1));
  mid_block = register_module("mid_block", VaeMidBlock(ch.back(), c.norm_num_groups, c.mid_block_add_attention));
  up_blocks = register_module("up_blocks", torch::nn::ModuleList());
  int64_t out = ch.back();
  for (size_t i = 0; i < ch.size(); ++i) {
    const int64_t prev = out;
    out = ch[ch.size() - 1 - i];
    up_blocks->push_back(SamplerBlock(prev, out, c.layers_per_block + 1, c.norm_num_groups, i + 1 < ch.size(), false));
  }
  conv_norm_out = register_module("conv_norm_out",
                                  rass::nn::GroupNorm(torch::nn::GroupNormOptions(c.norm_num_groups, ch[0]).eps(kEps)));
  conv_out = register_module("conv_out", LoraConv2d(ch[0], c.out_channels, 3, 1, 1));
}

torch::Tensor VaeDecoderImpl::forward(torch::Tensor z) {
  z = conv_in(z);
  z = mid_block->forward(std::move(z), gradient_checkpointing);
  for (auto& b : *up_blocks) z = b->as<SamplerBlock>()->forward(std::move(z), gradient_checkpointing);  // see the encoder
  return conv_out(group_norm_silu(conv_norm_out, z));
}

torch::Tensor LatentDistribution::sample(torch::Generator gen) const {
  torch::Tensor eps = gen.defined() ? at::randn(mean.sizes(), gen, mean.options()) : torch::randn_like(mean);
  return mean + std * eps;
}

AutoencoderKLImpl::AutoencoderKLImpl(const VaeConfig& c) : config(c) {
  encoder = register_module("encoder", VaeEncoder(c));
  decoder = register_module("decoder", VaeDecoder(c));
  quant_conv = register_module("quant_conv", LoraConv2d(2 * c.latent_channels, 2 * c.latent_channels, 1, 1, 0));
  post_quant_conv = register_module("post_quant_conv", LoraConv2d(c.latent_channels, c.latent_channels, 1, 1, 0));
}

LatentDistribution AutoencoderKLImpl::encode(const torch::Tensor& x, std::vector<torch::Tensor>* down_outputs) {
  torch::Tensor moments = quant_conv(encoder->forward(x, down_outputs));
  auto parts = moments.chunk(2, 1);
  LatentDistribution d;
  d.mean = parts[0];
  d.logvar = parts[1].clamp(-30.0, 20.0);
  d.std = (0.5 * d.logvar).exp();
  return d;
}

torch::Tensor AutoencoderKLImpl::decode(const torch::Tensor& z) { return decoder(post_quant_conv(z)); }

void AutoencoderKLImpl::set_gradient_checkpointing(bool on) {
  encoder->gradient_checkpointing = on;
  decoder->gradient_checkpointing = on;
}

}  // namespace rass::nn
