// Fused GroupNorm (+ SiLU) on the GPU: the element code of
// group_norm_kernel.hpp mapped to threads.
//   statistics, NCHW: a block per (chunk, n g); its threads stride over the
//     chunk's consecutive values (coalesced) and their sums meet in a tree in
//     shared memory (a fixed order);
//   statistics, NHWC: a block per (chunk, n); a thread per channel walks the
//     chunk's pixels (neighbouring threads read neighbouring channels of a
//     pixel: coalesced), then a thread per group merges its channels in order;
//   finalize: a thread per (n, g) merges the group's chunks in order;
//   apply: a thread per 4 values (one 8- or 16-byte load and store) where
//     the layout keeps 4 neighbours in one item, else one per value.
#include "rass/nn/group_norm_cuda.hpp"

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

namespace rass::nn::gn {

namespace {

constexpr int kThreads = kStatsThreads;

__device__ __forceinline__ float load(const float* p) { return *p; }
__device__ __forceinline__ float load(const __half* p) { return __half2float(*p); }
__device__ __forceinline__ float load(const __nv_bfloat16* p) { return __bfloat162float(*p); }
__device__ __forceinline__ void store(float* p, float v) { *p = v; }
__device__ __forceinline__ void store(__half* p, float v) { *p = __float2half_rn(v); }
__device__ __forceinline__ void store(__nv_bfloat16* p, float v) { *p = __float2bfloat16_rn(v); }

unsigned blocks_for(int64_t n) {
  const int64_t b = (n + kThreads - 1) / kThreads;
  return static_cast<unsigned>(b < 65535 * 8 ? b : 65535 * 8);  // grid-stride loops cover the rest
}

template <class T>
__global__ void stats_nchw(Shape s, const T* x, Partial* partials) {
  const int64_t chunk = blockIdx.x, ng = blockIdx.y, L = s.D() * s.HW;
  int64_t begin, end;
  chunk_range(s, chunk, begin, end);
  const T* base = x + ng * L;
  const float k = load(base + begin);
  float sum = 0.f, sq = 0.f;
  for (int64_t i = begin + threadIdx.x; i < end; i += blockDim.x) {
    const float v = load(base + i) - k;
    sum += v;
    sq += v * v;
  }
  __shared__ float s_sum[kThreads], s_sq[kThreads];
  s_sum[threadIdx.x] = sum;
  s_sq[threadIdx.x] = sq;
  __syncthreads();
  for (unsigned half = blockDim.x / 2; half > 0; half /= 2) {
    if (threadIdx.x < half) {
      s_sum[threadIdx.x] += s_sum[threadIdx.x + half];
      s_sq[threadIdx.x] += s_sq[threadIdx.x + half];
    }
    __syncthreads();
  }
  if (threadIdx.x == 0) partials[ng * s.chunks() + chunk] = from_shifted_sums(float(end - begin), k, s_sum[0], s_sq[0]);
}

template <class T>
__global__ void stats_nhwc(Shape s, const T* x, Partial* partials) {
  extern __shared__ Partial per_channel[];  // [C]
  const int64_t chunk = blockIdx.x, n = blockIdx.y;
  int64_t begin, end;
  chunk_range(s, chunk, begin, end);
  const float count = float(end - begin);
  for (int64_t c = threadIdx.x; c < s.C; c += blockDim.x) {
    const T* p = x + (n * s.HW + begin) * s.C + c;
    const float k = load(p);
    float sum = 0.f, sq = 0.f;
    for (int64_t q = 0; q < end - begin; ++q) {
      const float v = load(p + q * s.C) - k;
      sum += v;
      sq += v * v;
    }
    per_channel[c] = from_shifted_sums(count, k, sum, sq);
  }
  __syncthreads();
  const int64_t D = s.D();
  for (int64_t g = threadIdx.x; g < s.G; g += blockDim.x) {
    Partial acc = per_channel[g * D];
    for (int64_t j = 1; j < D; ++j) acc = merge(acc, per_channel[g * D + j]);
    partials[(n * s.G + g) * s.chunks() + chunk] = acc;
  }
}

__global__ void finalize(Shape s, const Partial* partials, const float* weight, const float* bias, float eps,
                         float* scale, float* shift) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < s.N * s.G; i += int64_t(gridDim.x) * blockDim.x)
    finalize_group(s, i / s.G, i % s.G, partials, weight, bias, eps, scale, shift);
}

template <class T>
__global__ void apply_one(Shape s, const T* x, const float* scale, const float* shift, bool silu, T* out) {
  const int64_t total = s.N * s.C * s.HW;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < total; i += int64_t(gridDim.x) * blockDim.x) {
    const int64_t nc = s.batch(i) * s.C + s.channel(i);
    store(out + i, apply(load(x + i), scale[nc], shift[nc], silu));
  }
}

// Four neighbours in memory: NHWC with C % 4 == 0 (four channels of one
// pixel), NCHW with HW % 4 == 0 (four pixels of one channel).
template <class T>
struct alignas(4 * sizeof(T)) Four {
  T v[4];
};

template <class T>
__global__ void apply_four(Shape s, const Four<T>* x, const float* scale, const float* shift, bool silu, Four<T>* out) {
  const int64_t total = s.N * s.C * s.HW / 4;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < total; i += int64_t(gridDim.x) * blockDim.x) {
    const Four<T> in = x[i];
    Four<T> y;
    const int64_t first = 4 * i, nc = s.batch(first) * s.C + s.channel(first);
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      const int64_t at = s.nhwc ? nc + j : nc;  // NHWC: the next channels; NCHW: the same channel
      store(&y.v[j], apply(load(&in.v[j]), scale[at], shift[at], silu));
    }
    out[i] = y;
  }
}

template <class T>
std::string run(const Shape& s, const T* x, const float* weight, const float* bias, float eps, bool silu,
                Partial* partials, float* scale, float* shift, T* out, cudaStream_t stream) {
  const int64_t chunks = s.chunks();
  if (s.nhwc) {
    const int threads = s.C >= kThreads ? kThreads : int((s.C + 31) / 32 * 32);
    stats_nhwc<<<dim3(unsigned(chunks), unsigned(s.N)), threads, size_t(s.C) * sizeof(Partial), stream>>>(s, x, partials);
  } else {
    stats_nchw<<<dim3(unsigned(chunks), unsigned(s.N * s.G)), kThreads, 0, stream>>>(s, x, partials);
  }
  finalize<<<blocks_for(s.N * s.G), kThreads, 0, stream>>>(s, partials, weight, bias, eps, scale, shift);
  const int64_t total = s.N * s.C * s.HW;
  const bool four = (s.nhwc ? s.C % 4 == 0 : s.HW % 4 == 0) &&
                    reinterpret_cast<uintptr_t>(x) % sizeof(Four<T>) == 0 &&
                    reinterpret_cast<uintptr_t>(out) % sizeof(Four<T>) == 0;
  if (four)
    apply_four<<<blocks_for(total / 4), kThreads, 0, stream>>>(s, reinterpret_cast<const Four<T>*>(x), scale, shift, silu,
                                                               reinterpret_cast<Four<T>*>(out));
  else
    apply_one<<<blocks_for(total), kThreads, 0, stream>>>(s, x, scale, shift, silu, out);
  const cudaError_t e = cudaGetLastError();
  return e == cudaSuccess ? std::string() : std::string(cudaGetErrorString(e));
}

}  // namespace

std::string forward_cuda(const Shape& s, ValueType type, const void* x, const float* weight, const float* bias,
                         float eps, bool silu, Partial* partials, float* scale, float* shift, void* out, void* stream) {
  if (s.N * s.C * s.HW == 0) return "";
  if (s.nhwc && s.C > kMaxChannelsNhwc) return "more channels than the channels-last statistics hold";
  if (s.chunks() > 2147483647 || s.N * (s.nhwc ? 1 : s.G) > 65535) return "too many items for the grid";
  auto st = static_cast<cudaStream_t>(stream);
  switch (type) {
    case ValueType::f32:
      return run(s, static_cast<const float*>(x), weight, bias, eps, silu, partials, scale, shift, static_cast<float*>(out), st);
    case ValueType::f16:
      return run(s, static_cast<const __half*>(x), weight, bias, eps, silu, partials, scale, shift, static_cast<__half*>(out), st);
    case ValueType::bf16:
      return run(s, static_cast<const __nv_bfloat16*>(x), weight, bias, eps, silu, partials, scale, shift,
                 static_cast<__nv_bfloat16*>(out), st);
  }
  return "unknown value type";
}

}  // namespace rass::nn::gn
