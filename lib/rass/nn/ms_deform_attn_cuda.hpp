// CUDA kernels of multi-scale deformable attention (ms_deform_attn_cuda.cu):
// forward for float32, float16 and bfloat16 values (locations, weights and
// the output in float32, as the official op runs under autocast), backward
// for float32. Raw device pointers and the caller's stream: no LibTorch in
// the .cu file. Compiled only in a CUDA build (RASS_MSDA_CUDA).
#pragma once
#include <string>

#include "rass/nn/ms_deform_attn_kernel.hpp"

namespace rass::nn::msda {

enum class ValueType { f32, f16, bf16 };

// Each returns "" or the CUDA error's text. `stream` is a cudaStream_t.
std::string forward_cuda(const Geometry& g, ValueType type, const void* value, const float* loc, const float* attn,
                         float* out, void* stream);
// grad_value must be zeroed by the caller (the kernel adds into it).
std::string backward_cuda(const Geometry& g, const float* value, const float* loc, const float* attn,
                          const float* grad_out, float* grad_value, float* grad_loc, float* grad_attn, void* stream);

}  // namespace rass::nn::msda
