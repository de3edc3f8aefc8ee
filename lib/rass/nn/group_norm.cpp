#include "rass/nn/group_norm.hpp"

#include <tuple>
#include <vector>

#include <ATen/ATen.h>
#include <c10/core/GradMode.h>
#include <torch/nn/functional/normalization.h>

namespace rass::nn {

torch::Tensor group_norm_channels_last(const torch::Tensor& x, int64_t groups, const torch::Tensor& weight,
                                       const torch::Tensor& bias, double eps) {
  const int64_t N = x.size(0), C = x.size(1), H = x.size(2), W = x.size(3), D = C / groups;
  // x is channels-last: its NHWC permutation is contiguous, so this is a view.
  const torch::Tensor v = x.permute({0, 2, 3, 1}).reshape({N, H * W, groups, D});
  const double n = double(H * W * D);
  const std::vector<int64_t> dims{1, 3};
  torch::Tensor mean, var;  // [N, 1, G, 1], float32 or wider
  if (at::isFloatingType(x.scalar_type()) && c10::elementSize(x.scalar_type()) >= 4) {
    std::tie(var, mean) = at::var_mean(v, dims, /*unbiased=*/false, /*keepdim=*/true);  // Welford
  } else {
    // bf16 / fp16: var_mean would round its results to x's dtype; a sum and
    // a 2-norm accumulate and return float32. E[x^2] - mean^2 loses digits
    // when |mean| >> std (1e-5 relative in float32 at mean/std = 13), far
    // below the 8-bit mantissa of the output.
    mean = at::sum(v, dims, /*keepdim=*/true, at::kFloat) / n;
    const torch::Tensor sq = at::linalg_vector_norm(v, 2, dims, /*keepdim=*/true, at::kFloat).square() / n;
    var = (sq - mean.square()).clamp_min(0);
  }
  const torch::Tensor rstd = var.add(eps).rsqrt();
  torch::Tensor scale = rstd, shift = -mean * rstd;  // y = x * scale + shift
  if (weight.defined()) {
    const torch::Tensor w = weight.to(at::kFloat).view({1, 1, groups, D});
    scale = scale * w;
    shift = shift * w;
  }
  if (bias.defined()) shift = shift + bias.to(at::kFloat).view({1, 1, groups, D});
  // Computed in float32 (the common type of the float32 scale and shift),
  // written in x's dtype: one pass over x. CUDA kernels cast as they load
  // and store; LibTorch 1.13's CPU kernels refuse mixed dtypes there (an
  // internal assert), so off CUDA (where forward() never comes: tests) x is
  // made float32 first.
  torch::Tensor y;
  if (x.is_cuda() || x.scalar_type() == scale.scalar_type()) {
    y = at::empty_like(v);
    at::addcmul_out(y, shift, v, scale);
  } else {
    y = at::addcmul(shift, v.to(at::kFloat), scale).to(x.scalar_type());
  }
  return y.view({N, H, W, C}).permute({0, 3, 1, 2});
}

bool group_norm_takes_channels_last(const torch::Tensor& x) {
  return x.is_cuda() && x.dim() == 4 && x.suggest_memory_format() == at::MemoryFormat::ChannelsLast;
}

torch::Tensor GroupNormImpl::forward(const torch::Tensor& input) {
  // Inference only: the path writes through addcmul's out= form, which
  // autograd does not follow (training runs LibTorch's kernel).
  const bool grad = c10::GradMode::is_enabled() && (input.requires_grad() || (weight.defined() && weight.requires_grad()));
  if (!grad && group_norm_takes_channels_last(input))
    return group_norm_channels_last(input, options.num_groups(), weight, bias, options.eps());
  return torch::nn::GroupNormImpl::forward(input);
}

void GroupNormImpl::pretty_print(std::ostream& stream) const {
  stream << "rass::nn::GroupNorm(" << options.num_groups() << ", " << options.num_channels()
         << ", eps=" << options.eps() << ", affine=" << (options.affine() ? "true" : "false") << ")";
}

}  // namespace rass::nn
