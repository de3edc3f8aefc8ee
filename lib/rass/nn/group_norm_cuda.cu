// Fused GroupNorm (+ SiLU) on the GPU: the element code of
// group_norm_kernel.hpp mapped to threads.
//   statistics, NCHW: a block per (chunk, n g); its threads stride over the
//     chunk's consecutive values (coalesced) and their Partials meet in a
//     tree in shared memory (a fixed order);
//   statistics, NHWC: a block per (chunk, n); a thread per channel walks the
//     chunk's pixels (neighbouring threads read neighbouring channels of a
//     pixel: coalesced), then a thread per group merges its channels in order;
//   finalize: a block per (n, g) sums the group's chunks in double (lanes,
//     then a tree) and writes its channels' scale and shift;
//   apply: a thread per 4 values (one 8- or 16-byte load and store) where
//     the layout keeps 4 neighbours in one item, else one per value.
#include "rass/nn/group_norm_cuda.hpp"

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

namespace rass::nn::gn {

namespace {

constexpr int kThreads = kLanes;

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
  // Lane t: values begin + t, begin + t + kLanes, ... shifted by its first.
  const int64_t count = lane_count(begin, end, threadIdx.x);
  __shared__ Partial lanes[kLanes];
  lanes[threadIdx.x] = count > 0 ? strided_partial(base + begin + threadIdx.x, count, kLanes) : Partial{0.f, 0.f, 0.f};
  __syncthreads();
  for (unsigned half = kLanes / 2; half > 0; half /= 2) {
    if (threadIdx.x < half) lanes[threadIdx.x] = merge(lanes[threadIdx.x], lanes[threadIdx.x + half]);
    __syncthreads();
  }
  if (threadIdx.x == 0) partials[ng * s.chunks() + chunk] = lanes[0];
}

template <class T>
__global__ void stats_nhwc(Shape s, const T* x, Partial* partials) {
  extern __shared__ Partial per_channel[];  // [C]
  const int64_t chunk = blockIdx.x, n = blockIdx.y;
  int64_t begin, end;
  chunk_range(s, chunk, begin, end);
  for (int64_t c = threadIdx.x; c < s.C; c += blockDim.x)
    per_channel[c] = strided_partial(x + (n * s.HW + begin) * s.C + c, end - begin, s.C);
  __syncthreads();
  const int64_t D = s.D();
  for (int64_t g = threadIdx.x; g < s.G; g += blockDim.x) {
    Partial acc = per_channel[g * D];
    for (int64_t j = 1; j < D; ++j) acc = merge(acc, per_channel[g * D + j]);
    partials[(n * s.G + g) * s.chunks() + chunk] = acc;
  }
}

// A block per (n, g): its chunks summed in double in the lanes' order (two
// passes, no division a step), then the scale and shift of its channels.
__global__ void finalize(Shape s, const Partial* partials, const float* weight, const float* bias, float eps,
                         float* scale, float* shift) {
  const int64_t ng = blockIdx.x, n = ng / s.G, g = ng % s.G, chunks = s.chunks();
  const Partial* p = partials + ng * chunks;
  __shared__ double a[kLanes], b[kLanes];
  lane_sums_pass1(p, chunks, threadIdx.x, a[threadIdx.x], b[threadIdx.x]);
  __syncthreads();
  for (unsigned half = kLanes / 2; half > 0; half /= 2) {
    if (threadIdx.x < half) {
      a[threadIdx.x] += a[threadIdx.x + half];
      b[threadIdx.x] += b[threadIdx.x + half];
    }
    __syncthreads();
  }
  const double count = a[0], mean = count > 0 ? b[0] / count : 0.0;
  __syncthreads();  // every lane has read a[0] and b[0] before b is reused
  b[threadIdx.x] = lane_sums_pass2(p, chunks, threadIdx.x, mean);
  __syncthreads();
  for (unsigned half = kLanes / 2; half > 0; half /= 2) {
    if (threadIdx.x < half) b[threadIdx.x] += b[threadIdx.x + half];
    __syncthreads();
  }
  const double m2 = b[0];
  for (int64_t c = g * s.D() + threadIdx.x; c < (g + 1) * s.D(); c += kLanes)
    scale_shift(s, n, c, count, mean, m2, weight, bias, eps, scale, shift);
}

// NCHW: item n * C + c of element i is i / HW; NHWC: n * C + i % C with
// n = i / (HW C). Index is int32_t where the tensor allows (64-bit division
// is many instructions: the pass would wait on arithmetic, not memory).
template <class Index>
__device__ __forceinline__ Index item_of(const Shape& s, Index i, Index hw, Index c) {
  return s.nhwc ? (i / (hw * c)) * c + i % c : i / hw;
}

template <class T, class Index>
__global__ void apply_one(Shape s, const T* x, const float* scale, const float* shift, bool silu, T* out) {
  const Index total = Index(s.N * s.C * s.HW), hw = Index(s.HW), c = Index(s.C);
  for (Index i = Index(blockIdx.x) * Index(blockDim.x) + Index(threadIdx.x); i < total; i += Index(gridDim.x) * Index(blockDim.x)) {
    const Index nc = item_of(s, i, hw, c);
    store(out + i, apply(load_float(x + i), scale[nc], shift[nc], silu));
  }
}

// Four neighbours in memory: NHWC with C % 4 == 0 (four channels of one
// pixel), NCHW with HW % 4 == 0 (four pixels of one channel).
template <class T>
struct alignas(4 * sizeof(T)) Four {
  T v[4];
};

template <class T, class Index>
__global__ void apply_four(Shape s, const Four<T>* x, const float* scale, const float* shift, bool silu, Four<T>* out) {
  const Index total = Index(s.N * s.C * s.HW / 4), hw = Index(s.HW), c = Index(s.C);
  for (Index i = Index(blockIdx.x) * Index(blockDim.x) + Index(threadIdx.x); i < total; i += Index(gridDim.x) * Index(blockDim.x)) {
    const Four<T> in = x[i];
    Four<T> y;
    const Index nc = item_of(s, Index(4) * i, hw, c);
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      const Index at = s.nhwc ? nc + j : nc;  // NHWC: the next channels; NCHW: the same channel
      store(&y.v[j], apply(load_float(&in.v[j]), scale[at], shift[at], silu));
    }
    out[i] = y;
  }
}

template <class T, class Index>
void launch_apply(const Shape& s, const T* x, const float* scale, const float* shift, bool silu, T* out, cudaStream_t stream) {
  const int64_t total = s.N * s.C * s.HW;
  const bool four = (s.nhwc ? s.C % 4 == 0 : s.HW % 4 == 0) &&
                    reinterpret_cast<uintptr_t>(x) % sizeof(Four<T>) == 0 &&
                    reinterpret_cast<uintptr_t>(out) % sizeof(Four<T>) == 0;
  if (four)
    apply_four<T, Index><<<blocks_for(total / 4), kThreads, 0, stream>>>(s, reinterpret_cast<const Four<T>*>(x), scale, shift,
                                                                         silu, reinterpret_cast<Four<T>*>(out));
  else
    apply_one<T, Index><<<blocks_for(total), kThreads, 0, stream>>>(s, x, scale, shift, silu, out);
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
  finalize<<<unsigned(s.N * s.G), kLanes, 0, stream>>>(s, partials, weight, bias, eps, scale, shift);
  // int32 indices where every index fits (the grid-stride step included).
  if (s.N * s.C * s.HW + int64_t(kThreads) * 65535 * 8 < 2147483647LL)
    launch_apply<T, int32_t>(s, x, scale, shift, silu, out, stream);
  else
    launch_apply<T, int64_t>(s, x, scale, shift, silu, out, stream);
  const cudaError_t e = cudaGetLastError();
  return e == cudaSuccess ? std::string() : std::string(cudaGetErrorString(e));
}

}  // namespace

std::string forward_cuda(const Shape& s, ValueType type, const void* x, const float* weight, const float* bias,
                         float eps, bool silu, Partial* partials, float* scale, float* shift, void* out, void* stream) {
  if (s.N * s.C * s.HW == 0) return "";
  if (s.nhwc && s.C > kMaxChannelsNhwc) return "more channels than the channels-last statistics hold";
  if (!fits_grid(s)) return "too many items for the grid";
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
