// CUDA kernels of the fused GroupNorm (+ SiLU) (group_norm_cuda.cu; the
// element code in group_norm_kernel.hpp): float32, float16 and bfloat16
// values, statistics and the affine parameters in float. Raw device
// pointers and the caller's stream: no LibTorch in the .cu file. Compiled
// only in a CUDA build (RASS_GN_CUDA).
#pragma once
#include <string>

#include "rass/nn/group_norm_kernel.hpp"

namespace rass::nn::gn {

enum class ValueType { f32, f16, bf16 };

// y = GroupNorm(x) (then SiLU when `silu`) for x laid out as s says (NCHW
// contiguous or channels-last). Scratch the caller allocates on the device:
// partials [N, G, s.chunks()], scale and shift [N, C] float. weight and bias
// (float [C]) may be null. Returns "" or the reason it could not run.
std::string forward_cuda(const Shape& s, ValueType type, const void* x, const float* weight, const float* bias,
                         float eps, bool silu, Partial* partials, float* scale, float* shift, void* out, void* stream);

}  // namespace rass::nn::gn
