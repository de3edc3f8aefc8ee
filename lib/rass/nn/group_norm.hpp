// torch::nn::GroupNorm with faster paths for inference on CUDA.
// - The fused kernels (group_norm_fused, RASS_FUSED_NORM on by default):
//   NCHW or channels-last input, a statistics pass and one pass writing the
//   norm (and, through forward_silu, the SiLU after it) in the input's layout.
// - Without them, a channels-last input is normalised in its own layout by
//   LibTorch ops (group_norm_channels_last). Why: LibTorch 2.11's CUDA group
//   norm makes its input contiguous (NCHW) and returns NCHW
//   (pytorch/pytorch#111824; an NHWC kernel came after 2.11), so with
//   --channels-last every GroupNorm was two layout copies, its own and the
//   next convolution's back to NHWC.
// Elsewhere (the CPU, 3-D inputs, autograd) LibTorch's own. Same
// parameters, names and options as torch::nn::GroupNorm; forward is not
// virtual in LibTorch: reach it through this class, not as<torch::nn::GroupNormImpl>().
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

// Whether GroupNormImpl::forward takes group_norm_channels_last for `x`
// (a channels-last CUDA input, when the fused kernels do not take it).
bool group_norm_takes_channels_last(const torch::Tensor& x);

// GroupNorm, then SiLU when `silu`, of a [N, C, H, W] tensor (NCHW or
// channels-last; other strides are made contiguous first) by the fused
// kernels of group_norm_kernel.hpp: a statistics pass and one pass that
// writes the result (LibTorch's norm then SiLU: five passes over memory).
// On CUDA the kernels of group_norm_cuda.cu; on the CPU the same element
// code in loops (slow: the tests' view of what the GPU runs). The output
// has x's dtype and layout. weight and bias may be undefined.
torch::Tensor group_norm_fused(const torch::Tensor& x, int64_t groups, const torch::Tensor& weight,
                               const torch::Tensor& bias, double eps, bool silu);

// Whether GroupNormImpl takes group_norm_fused for `x`: inference on a CUDA
// device in a build with the kernels, fused norms on, a 4-D float32, float16
// or bfloat16 input (at most 4096 channels channels-last).
bool group_norm_takes_fused(const torch::Tensor& x, int64_t groups);

// RASS_FUSED_NORM (read once): unset or 1 on, 0 off (LibTorch's norm and
// SiLU, for measurement); anything else throws Error(usage) naming it
// (rass-restore and rass-segment ask before loading the model).
// set_fused_group_norm overrides it (tests).
bool fused_group_norm_on();
void set_fused_group_norm(bool on);
// Whether this build has the CUDA kernels.
bool fused_group_norm_built();

class GroupNormImpl : public torch::nn::GroupNormImpl {
 public:
  using torch::nn::GroupNormImpl::GroupNormImpl;
  torch::Tensor forward(const torch::Tensor& input);
  // SiLU(forward(input)) in one fused kernel where group_norm_takes_fused;
  // elsewhere the two steps (SiLU in place when no gradient is recorded:
  // the norm's output is fresh).
  torch::Tensor forward_silu(const torch::Tensor& input);
  void pretty_print(std::ostream& stream) const override;
};
TORCH_MODULE(GroupNorm);

}  // namespace rass::nn
