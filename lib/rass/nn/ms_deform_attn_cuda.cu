// Multi-scale deformable attention on the GPU: the element code of
// ms_deform_attn_kernel.hpp mapped to threads. Forward: one thread per output
// element (n, q, m, d), so neighbouring threads read neighbouring channels of
// the same corner (coalesced). Backward: one thread per sampling point,
// looping over the channels, so the location and weight gradients need no
// reduction across threads; only the value gradient is scattered (atomicAdd).
#include "rass/nn/ms_deform_attn_cuda.hpp"

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

namespace rass::nn::msda {

namespace {

constexpr int kThreads = 256;

unsigned blocks_for(int64_t n) {
  const int64_t b = (n + kThreads - 1) / kThreads;
  return static_cast<unsigned>(b < 65535 * 8 ? b : 65535 * 8);  // grid-stride loops cover the rest
}

template <class T>
__global__ void forward_kernel(Geometry g, const T* value, const float* loc, const float* attn, float* out) {
  const int64_t total = g.N * g.Lq * g.M * g.D;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < total; i += int64_t(gridDim.x) * blockDim.x) {
    const int64_t d = i % g.D, m = (i / g.D) % g.M, q = (i / (g.D * g.M)) % g.Lq, n = i / (g.D * g.M * g.Lq);
    out[i] = forward_element(g, value, loc, attn, n, q, m, d);
  }
}

struct AtomicAdd {
  __device__ void operator()(float* p, float v) const { atomicAdd(p, v); }
};

__global__ void backward_kernel(Geometry g, const float* value, const float* loc, const float* attn,
                                const float* grad_out, float* grad_value, float* grad_loc, float* grad_attn) {
  const int64_t total = g.N * g.Lq * g.M * g.L * g.P;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < total; i += int64_t(gridDim.x) * blockDim.x) {
    const int64_t p = i % g.P;
    const int l = static_cast<int>((i / g.P) % g.L);
    const int64_t m = (i / (g.P * g.L)) % g.M, q = (i / (g.P * g.L * g.M)) % g.Lq, n = i / (g.P * g.L * g.M * g.Lq);
    backward_point(g, value, loc, attn, grad_out, n, q, m, l, p, grad_value, grad_loc, grad_attn, AtomicAdd{});
  }
}

std::string status(cudaError_t e) { return e == cudaSuccess ? std::string() : std::string(cudaGetErrorString(e)); }

}  // namespace

std::string forward_cuda(const Geometry& g, ValueType type, const void* value, const float* loc, const float* attn,
                         float* out, void* stream) {
  const int64_t total = g.N * g.Lq * g.M * g.D;
  if (total == 0) return "";
  auto s = static_cast<cudaStream_t>(stream);
  switch (type) {
    case ValueType::f32:
      forward_kernel<<<blocks_for(total), kThreads, 0, s>>>(g, static_cast<const float*>(value), loc, attn, out);
      break;
    case ValueType::f16:
      forward_kernel<<<blocks_for(total), kThreads, 0, s>>>(g, static_cast<const __half*>(value), loc, attn, out);
      break;
    case ValueType::bf16:
      forward_kernel<<<blocks_for(total), kThreads, 0, s>>>(g, static_cast<const __nv_bfloat16*>(value), loc, attn, out);
      break;
  }
  return status(cudaGetLastError());
}

std::string backward_cuda(const Geometry& g, const float* value, const float* loc, const float* attn,
                          const float* grad_out, float* grad_value, float* grad_loc, float* grad_attn, void* stream) {
  const int64_t total = g.N * g.Lq * g.M * g.L * g.P;
  if (total == 0) return "";
  backward_kernel<<<blocks_for(total), kThreads, 0, static_cast<cudaStream_t>(stream)>>>(
      g, value, loc, attn, grad_out, grad_value, grad_loc, grad_attn);
  return status(cudaGetLastError());
}

}  // namespace rass::nn::msda
