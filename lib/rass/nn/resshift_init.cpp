#include "rass/nn/resshift_init.hpp"

#include <cmath>

#include <ATen/CPUGeneratorImpl.h>
#include <torch/torch.h>

namespace rass::nn {

namespace {

// PyTorch's default for Conv2d and Linear: weight and bias U(-1/sqrt(fan_in), 1/sqrt(fan_in)).
void default_uniform(torch::Tensor& weight, torch::Tensor& bias, at::Generator& gen) {
  const int64_t fan_in = weight.numel() / weight.size(0);
  const double bound = 1.0 / std::sqrt(double(fan_in));
  weight.uniform_(-bound, bound, gen);
  if (bias.defined()) bias.uniform_(-bound, bound, gen);
}

}  // namespace

void init_resshift_weights(ResShiftUNetImpl& net, uint64_t seed) {
  torch::NoGradGuard no_grad;
  at::Generator gen = at::make_generator<at::CPUGeneratorImpl>(seed);
  for (const auto& item : net.named_modules("", false)) {
    torch::nn::Module* m = item.value().get();
    if (auto* conv = dynamic_cast<torch::nn::Conv2dImpl*>(m)) {
      default_uniform(conv->weight, conv->bias, gen);
    } else if (auto* lin = dynamic_cast<torch::nn::LinearImpl*>(m)) {
      default_uniform(lin->weight, lin->bias, gen);
    } else if (auto* gn = dynamic_cast<torch::nn::GroupNormImpl*>(m)) {
      gn->weight.fill_(1);
      gn->bias.fill_(0);
    } else if (auto* attn = dynamic_cast<SwinWindowAttentionImpl*>(m)) {
      attn->relative_position_bias_table.normal_(0, 0.02, gen).clamp_(-2, 2);
    }
  }
  // zero_module after the draws: the blocks' last convolution starts at zero.
  for (const auto& item : net.named_modules("", false))
    if (auto* block = dynamic_cast<ResShiftResBlockImpl*>(item.value().get())) {
      block->out_conv->weight.zero_();
      if (block->out_conv->bias.defined()) block->out_conv->bias.zero_();
    }
}

}  // namespace rass::nn
