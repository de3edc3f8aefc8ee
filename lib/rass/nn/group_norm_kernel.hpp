// The element code of the fused GroupNorm (+ SiLU) kernels, shared by the
// CUDA kernels (group_norm_cuda.cu) and the CPU loops the tests run
// (group_norm_loops in group_norm.cpp), so what the CPU tests check is what
// the GPU runs; only the mapping of elements to threads differs. No LibTorch
// here: nvcc compiles this without the LibTorch headers.
//
// Why a kernel of our own: GroupNorm then SiLU is every resnet's norm1 and
// norm2 and the networks' output norms (about 60 per 512 px restore), each
// over a whole activation. LibTorch runs them as a norm (a statistics pass,
// then a pass that reads x and writes y) and a SiLU (reads y, writes it):
// five passes over memory. Fused: a statistics pass, then one pass that
// reads x and writes silu(norm(x)): three. On channels-last tensors
// LibTorch 2.11's norm is slower still (it makes them NCHW; our LibTorch-op
// version, group_norm_channels_last, reads x three times).
//
// The computation, for x [N, C, HW] in groups of D = C / G channels:
//   1. statistics of each chunk of each (n, g) as a count, mean and sum of
//      squared deviations (a Partial): NCHW, each of kLanes lanes sums its
//      share of x - k (k: the lane's first value; shifted sums keep
//      E[x^2] - E[x]^2 from losing digits when |mean| >> std) and the lanes'
//      Partials merge in a tree (Chan et al.'s pairwise formula); NHWC, the
//      same per channel over the chunk's pixels, the channels merged in order;
//   2. the chunks of each (n, g) summed in double in the lanes' order:
//      mean and variance (biased, as GroupNorm), then per channel
//      scale = w rstd and shift = b - mean w rstd (float);
//   3. y = x scale + shift in float, SiLU y / (1 + exp(-y)) when asked (as
//      LibTorch's CUDA silu computes it), written in x's dtype.
// Chunks are fixed by the shape alone, and every sum runs in a fixed order,
// so results do not depend on timing (no atomics).
//
// Layouts: NCHW contiguous (a group is D * HW consecutive values; a chunk is
// kChunkValues of them) or channels-last (NHWC: a chunk is kChunkPixels
// pixels of all D channels of the group).
#pragma once
#include <cmath>
#include <cstdint>

#include "rass/nn/kernel_load.hpp"

#if defined(__CUDACC__)
#define RASS_GN_HD __host__ __device__ __forceinline__
#else
#define RASS_GN_HD inline
#endif

namespace rass::nn::gn {

constexpr int64_t kChunkValues = 16384;  // NCHW: values of one group per chunk
// NHWC: pixels per chunk, from the shape alone (so the bits do not depend on
// the device): enough chunks over the batch for kTargetBlocks blocks (two an
// SM on an H100) at small sizes (the UNet's 8x8 level), at most 256 pixels.
constexpr int64_t kMinChunkPixels = 16, kMaxChunkPixels = 256, kTargetBlocks = 264;
constexpr int64_t kMaxChannelsNhwc = 4096;  // the NHWC statistics keep a Partial per channel in shared memory
// The threads of a block that reduces (a power of two), and the order both
// the kernels and the CPU loops add in: lane t takes items t, t + kLanes, ...
// (its own running sum), then the lanes meet pairwise in a tree (lane t
// takes lane t + half, for half = kLanes / 2 .. 1).
constexpr int kLanes = 256;

struct Shape {
  int64_t N = 0, C = 0, HW = 0, G = 1;
  bool nhwc = false;
  RASS_GN_HD int64_t D() const { return C / G; }
  RASS_GN_HD int64_t chunk_pixels() const {
    const int64_t p = (N * HW + kTargetBlocks - 1) / kTargetBlocks;
    return p < kMinChunkPixels ? kMinChunkPixels : p > kMaxChunkPixels ? kMaxChunkPixels : p;
  }
  RASS_GN_HD int64_t chunks() const {
    if (nhwc) {
      const int64_t p = chunk_pixels();
      return (HW + p - 1) / p;
    }
    return (D() * HW + kChunkValues - 1) / kChunkValues;
  }
  // The channel and the batch index of element i in memory order.
  RASS_GN_HD int64_t channel(int64_t i) const { return nhwc ? i % C : (i / HW) % C; }
  RASS_GN_HD int64_t batch(int64_t i) const { return i / (HW * C); }
};

// Whether the kernels' grids hold the shape: NCHW statistics (chunks, N G),
// NHWC statistics (chunks, N), the finalize N G blocks; y at most 65535.
RASS_GN_HD bool fits_grid(const Shape& s) {
  return s.chunks() <= 2147483647 && s.N * s.G <= 2147483647 && (s.nhwc ? s.N : s.N * s.G) <= 65535;
}

struct Partial {
  float n, mean, m2;  // count, mean, sum of squared deviations
};

// A Partial from n values' sums of (x - k) and (x - k)^2. k is a value of
// the set (the first): the sums then stay near the set's spread, not its
// mean, so E[x^2] - E[x]^2 keeps its digits however far the mean is from 0.
RASS_GN_HD Partial from_shifted_sums(float n, float k, float s, float ss) {
  const float d = s / n;
  const float m2 = ss - s * d;
  return Partial{n, k + d, m2 > 0.f ? m2 : 0.f};
}

// The Partial of `count` (>= 1) values p[0], p[stride], p[2 stride], ...,
// summed in that order, shifted by the first: an NCHW lane's share of a
// chunk (stride kLanes), an NHWC channel's pixels of a chunk (stride C).
template <class T>
RASS_GN_HD Partial strided_partial(const T* p, int64_t count, int64_t stride) {
  const float k = load_float(p);
  float sum = 0.f, sq = 0.f;
  for (int64_t q = 0; q < count; ++q) {
    const float v = load_float(p + q * stride) - k;
    sum += v;
    sq += v * v;
  }
  return from_shifted_sums(float(count), k, sum, sq);
}

// How many of a chunk's values [begin, end) NCHW lane t takes.
RASS_GN_HD int64_t lane_count(int64_t begin, int64_t end, int t) {
  return begin + t < end ? (end - begin - t + kLanes - 1) / kLanes : 0;
}

// Chan et al.: the Partial of the union of a's and b's values (float; the
// lanes of an NCHW chunk, the channels of an NHWC chunk).
RASS_GN_HD Partial merge(const Partial& a, const Partial& b) {
  const float n = a.n + b.n;
  if (n == 0.f) return a;
  const float delta = b.mean - a.mean, fb = b.n / n;
  return Partial{n, a.mean + delta * fb, a.m2 + b.m2 + delta * delta * a.n * fb};
}

// The chunks of a group ([chunks] Partials) in double, without a division a
// step: pass 1 sums n and n * mean (the mean is their quotient), pass 2 sums
// m2 + n (mean_k - mean)^2. lane_sums gives lane t's share of either pass.
RASS_GN_HD void lane_sums_pass1(const Partial* p, int64_t chunks, int t, double& n, double& s) {
  n = 0;
  s = 0;
  for (int64_t k = t; k < chunks; k += kLanes) {
    n += double(p[k].n);
    s += double(p[k].n) * double(p[k].mean);
  }
}
RASS_GN_HD double lane_sums_pass2(const Partial* p, int64_t chunks, int t, double mean) {
  double m2 = 0;
  for (int64_t k = t; k < chunks; k += kLanes) {
    const double d = double(p[k].mean) - mean;
    m2 += double(p[k].m2) + double(p[k].n) * d * d;
  }
  return m2;
}

// Scale and shift of channels c of group g of item n from the group's
// mean and sum of squared deviations over `count` values; weight and bias
// may be null.
RASS_GN_HD void scale_shift(const Shape& s, int64_t n, int64_t c, double count, double mean, double m2,
                            const float* weight, const float* bias, float eps, float* scale, float* shift) {
  const double var = count > 0 ? m2 / count : 0.0;
  const double rstd = 1.0 / sqrt(var + double(eps));
  const double w = weight ? double(weight[c]) : 1.0, b = bias ? double(bias[c]) : 0.0;
  scale[n * s.C + c] = float(w * rstd);
  shift[n * s.C + c] = float(b - mean * w * rstd);
}

// One output value from its input value (as float) and its channel's scale and shift.
RASS_GN_HD float apply(float x, float scale, float shift, bool silu) {
  const float y = x * scale + shift;
  return silu ? y / (1.0f + expf(-y)) : y;
}

// The range of one chunk: NCHW, values [begin, end) of the group's D * HW;
// NHWC, pixels [begin, end).
RASS_GN_HD void chunk_range(const Shape& s, int64_t chunk, int64_t& begin, int64_t& end) {
  const int64_t step = s.nhwc ? s.chunk_pixels() : kChunkValues, total = s.nhwc ? s.HW : s.D() * s.HW;
  begin = chunk * step;
  end = begin + step < total ? begin + step : total;
}

}  // namespace rass::nn::gn
