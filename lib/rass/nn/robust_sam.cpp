#include "rass/nn/robust_sam.hpp"

#include <ATen/ATen.h>
#include <torch/fft.h>
#include <torch/nn/functional/activation.h>
#include <torch/nn/functional/pooling.h>
#include <torch/nn/functional/upsampling.h>
#include <torch/nn/modules/activation.h>
#include <torch/nn/modules/linear.h>

#include "rass/nn/sam.hpp"

namespace rass::nn {

namespace {

namespace RF = torch::nn::functional;

constexpr double kRobustNormEps = 1e-5;  // BatchNorm2d, InstanceNorm1d/2d

torch::Tensor robust_leaky(const torch::Tensor& x) { return torch::leaky_relu(x, 0.01); }

torch::nn::Conv2d robust_conv(int64_t in, int64_t out, int64_t k, bool bias = true) {
  return torch::nn::Conv2d(torch::nn::Conv2dOptions(in, out, k).padding(k / 2).bias(bias));
}

// Each (sample, channel) over its pixels, biased variance, in float32 (the
// squares overflow fp16 on large features): InstanceNorm2d(affine=False).
torch::Tensor robust_instance_norm2d(const torch::Tensor& x) {
  const torch::Tensor xf = x.to(torch::kFloat);
  const torch::Tensor m = xf.mean({2, 3}, true);
  const torch::Tensor v = (xf - m).pow(2).mean({2, 3}, true);
  return ((xf - m) / torch::sqrt(v + kRobustNormEps)).to(x.scalar_type());
}

}  // namespace

RobustBatchNorm2dImpl::RobustBatchNorm2dImpl(int64_t channels) {
  weight = register_parameter("weight", torch::ones({channels}));
  bias = register_parameter("bias", torch::zeros({channels}));
  running_mean = register_buffer("running_mean", torch::zeros({channels}));
  running_var = register_buffer("running_var", torch::ones({channels}));
}

torch::Tensor RobustBatchNorm2dImpl::forward(const torch::Tensor& x) {
  // Training-mode statistics of a batch of one (RobustSAM's build never
  // calls .eval(), so its eval.py normalises each image, and each prompt's
  // mask features, by their own statistics): per sample, as many objects
  // decoded together each get what one prompt alone gets. The running
  // statistics are loaded and not read.
  const torch::Tensor y = robust_instance_norm2d(x);
  return y * weight.to(y.scalar_type()).view({1, -1, 1, 1}) + bias.to(y.scalar_type()).view({1, -1, 1, 1});
}

RobustSelectorImpl::RobustSelectorImpl(int64_t channels, int64_t reduction) {
  const int64_t in = channels * 16;  // a 4x4 grid of cells
  fc = register_module("fc", torch::nn::Sequential(Linear(torch::nn::LinearOptions(in, in / reduction).bias(false)),
                                                   torch::nn::ReLU()));
  att_conv1 = register_module("att_conv1", Linear(in / reduction, in));
  att_conv2 = register_module("att_conv2", Linear(in / reduction, in));
}

std::pair<torch::Tensor, torch::Tensor> RobustSelectorImpl::forward(const torch::Tensor& x) {
  const int64_t b = x.size(0), c = x.size(1), h = x.size(2), w = x.size(3);
  torch::Tensor y = torch::adaptive_avg_pool2d(x, {4, 4}).reshape({b, -1});
  y = fc->forward(y);
  const torch::Tensor a = torch::softmax(
      torch::stack({att_conv1(y).view({b, c, 4, 4}), att_conv2(y).view({b, c, 4, 4})}), 0);
  // F.interpolate(scale_factor=(H / 4, W / 4), mode="nearest"): each cell to its block.
  auto up = [&](const torch::Tensor& t) {
    return RF::interpolate(t, RF::InterpolateFuncOptions()
                                  .size(std::vector<int64_t>{h, w})
                                  .mode(torch::kNearest));
  };
  return {up(a[0]), up(a[1])};
}

RobustSelectiveConvImpl::RobustSelectiveConvImpl(int64_t in, int64_t out, int64_t reduction) {
  conv1 = register_module("conv1", robust_conv(in, out, 3, false));
  conv2 = register_module("conv2", robust_conv(in, out, 3, false));
  selector = register_module("selector", RobustSelector(out, reduction));
  BN = register_module("BN", RobustBatchNorm2d(in));
}

torch::Tensor RobustSelectiveConvImpl::forward(const torch::Tensor& x) {
  const torch::Tensor out1 = conv1(robust_leaky(BN(x)));
  const torch::Tensor out2 = conv2(robust_leaky(robust_instance_norm2d(x)));
  auto [a1, a2] = selector(out1 + out2);
  return out1 * a1 + out2 * a2;
}

RobustSkDownImpl::RobustSkDownImpl(int64_t channels, int64_t reduction) {
  maxpool_conv = register_module("maxpool_conv", torch::nn::Sequential(RobustSelectiveConv(channels, channels, reduction)));
}

torch::Tensor RobustSkDownImpl::forward(const torch::Tensor& x) {
  return maxpool_conv->ptr(0)->as<RobustSelectiveConvImpl>()->forward(x);
}

RobustChannelAttentionImpl::RobustChannelAttentionImpl(int64_t channels) {
  excitation = register_module("excitation", torch::nn::Sequential(Linear(channels, channels / 16), torch::nn::ReLU(),
                                                                   Linear(channels / 16, channels), torch::nn::Sigmoid()));
}

torch::Tensor RobustChannelAttentionImpl::forward(const torch::Tensor& x) {
  const torch::Tensor e = excitation->forward(x.mean({2, 3}));  // AdaptiveAvgPool2d(1)
  return x * e.view({x.size(0), x.size(1), 1, 1});
}

RobustDncBlockImpl::RobustDncBlockImpl(int64_t channels) {
  channel_attention = register_module("channel_attention", RobustChannelAttention(2 * channels));
  SEMBlock = register_module("SEMBlock", RobustSkDown(channels, 16));
}

torch::Tensor RobustDncBlockImpl::forward(const torch::Tensor& x) {
  return channel_attention(torch::cat({x, SEMBlock(x)}, 1));
}

RobustFourierBlockImpl::RobustFourierBlockImpl(int64_t channels) {
  conv_layer = register_module("conv_layer", robust_conv(channels, channels, 1));
}

torch::Tensor RobustFourierBlockImpl::forward(const torch::Tensor& x) {
  // fft2 over the last two dimensions; the spectrum in float32 (bf16 has no FFT).
  const torch::Tensor spec = torch::fft::fft2(x.to(torch::kFloat));
  const torch::Tensor magnitude = spec.abs(), phase = spec.angle();
  // The convolution in float32 too: the zero frequency is H x W times the
  // mean (65536 x for a 256 x 256 map), past fp16's range.
  const torch::Tensor m = torch::conv2d(magnitude, conv_layer->weight.to(torch::kFloat),
                                        conv_layer->bias.to(torch::kFloat));
  const torch::Tensor changed = torch::complex(m * torch::cos(phase), m * torch::sin(phase));
  return torch::real(torch::fft::ifft2(changed)).to(x.scalar_type());
}

RobustFeatureBlockImpl::RobustFeatureBlockImpl(Kind kind, int64_t channels, int64_t d) {
  dnc_block_combined = register_module("dnc_block_combined", RobustDncBlock(channels));
  fgm_block = register_module("fgm_block", RobustFourierBlock(2 * channels));
  conv_layer = register_module("conv_layer", robust_conv(2 * channels, channels, 3));
  if (kind == Kind::mask) {
    resample = register_module("downsample_layer",
                               torch::nn::Sequential(robust_conv(channels, 2 * channels, 3), LayerNorm2d(2 * channels),
                                                     torch::nn::GELU(), robust_conv(2 * channels, channels, 3)));
  } else {
    // Both upsampling stacks: ConvTranspose2d to transformer_dim, LayerNorm2d, GELU, to transformer_dim / 8.
    const int64_t mid = d;
    resample = register_module(
        "upsample_layer",
        torch::nn::Sequential(torch::nn::ConvTranspose2d(torch::nn::ConvTranspose2dOptions(channels, mid, 2).stride(2)),
                              LayerNorm2d(mid), torch::nn::GELU(),
                              torch::nn::ConvTranspose2d(torch::nn::ConvTranspose2dOptions(mid, d / 8, 2).stride(2))));
  }
}

torch::Tensor RobustFeatureBlockImpl::forward(const torch::Tensor& x) {
  return resample->forward(conv_layer(fgm_block(dnc_block_combined(x))));
}

RobustTokenBlockImpl::RobustTokenBlockImpl(int64_t num_tokens, int64_t d) : chunk(d / num_tokens) {
  mlp = register_module("mlp", torch::nn::Sequential(Linear(chunk, chunk), torch::nn::ReLU(),
                                                     Linear(chunk, chunk * num_tokens)));
}

torch::Tensor RobustTokenBlockImpl::forward(const torch::Tensor& tokens) {
  // IN_layer_I then IN_layer_II: InstanceNorm1d on one prompt's [1, D] token
  // normalises it over its D features.
  auto norm = [](const torch::Tensor& t) {
    const torch::Tensor m = t.mean(-1, true);
    const torch::Tensor v = (t - m).pow(2).mean(-1, true);
    return (t - m) / torch::sqrt(v + kRobustNormEps);
  };
  const torch::Tensor tf = tokens.to(torch::kFloat);
  return mlp->forward(norm(norm(tf)).slice(-1, 0, chunk).to(tokens.scalar_type()));
}

}  // namespace rass::nn
