// torch::nn::GroupNorm that keeps a channels-last input channels-last on CUDA.
// Why: LibTorch 2.11's CUDA group norm makes its input contiguous (NCHW) and
// returns NCHW (pytorch/pytorch#111824; an NHWC kernel came after 2.11), so
// with --channels-last every GroupNorm of the UNet and the VAE was two
// layout copies, its own and the next convolution's back to NHWC -- the
// likely reason the first GPU run's --channels-last rows were slower than
// without. Elsewhere (the CPU, NCHW inputs, 3-D inputs) LibTorch's own.
// Same parameters, names and options as torch::nn::GroupNorm; forward is not
// virtual in LibTorch: reach it through this class, not as<torch::nn::GroupNormImpl>().
// Inference only (no gradient wanted); with autograd, LibTorch's kernel.
#pragma once
#include <ostream>

#include <ATen/core/Tensor.h>
#include <torch/nn/modules/normalization.h>
#include <torch/nn/pimpl.h>

namespace rass::nn {

// GroupNorm of a [N, C, H, W] tensor laid out channels-last, computed on its
// NHWC layout: statistics in float32 (Welford for float32 inputs; for bf16
// and fp16 a sum and a 2-norm that accumulate in float32 without a float
// copy of x), then one pass x * scale + shift in float32 written in x's
// dtype, channels-last. Equal to at::group_norm
// within float rounding (tests/nn/test_group_norm.cpp).
torch::Tensor group_norm_channels_last(const torch::Tensor& x, int64_t groups, const torch::Tensor& weight,
                                       const torch::Tensor& bias, double eps);

// Whether GroupNormImpl::forward takes group_norm_channels_last for `x`.
bool group_norm_takes_channels_last(const torch::Tensor& x);

class GroupNormImpl : public torch::nn::GroupNormImpl {
 public:
  using torch::nn::GroupNormImpl::GroupNormImpl;
  torch::Tensor forward(const torch::Tensor& input);
  void pretty_print(std::ostream& stream) const override;
};
TORCH_MODULE(GroupNorm);

}  // namespace rass::nn
