// The element code of the fused GroupNorm (+ SiLU) kernels, shared by the
// CUDA kernels (group_norm_cuda.cu) and the CPU loops the tests run
// (group_norm_direct in group_norm.cpp), so what the CPU tests check is what
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
//      squared deviations (a Partial), from sums of x - k (k: the chunk's
//      first value; shifted sums keep E[x^2] - E[x]^2 from losing digits
//      when |mean| >> std);
//   2. the chunks of each (n, g) merged in order (Chan et al.'s pairwise
//      formula, in double): mean and variance (biased, as GroupNorm), then
//      per channel scale = w rstd and shift = b - mean w rstd (float);
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

#if defined(__CUDACC__)
#define RASS_GN_HD __host__ __device__ __forceinline__
#else
#define RASS_GN_HD inline
#endif

namespace rass::nn::gn {

constexpr int64_t kChunkValues = 16384;  // NCHW: values of one group per chunk
constexpr int64_t kChunkPixels = 256;    // NHWC: pixels per chunk
constexpr int64_t kMaxChannelsNhwc = 4096;  // the NHWC statistics keep a Partial per channel in shared memory
// NCHW statistics: the threads of a chunk's block (a power of two). Thread
// t sums values t, t + kStatsThreads, ... of the chunk; the threads' sums then
// meet pairwise in a tree (t += t + half for half = kStatsThreads / 2 .. 1).
// The CPU loops add in this same order: 64 values a sum, not 16384 in a row.
constexpr int kStatsThreads = 256;

struct Shape {
  int64_t N = 0, C = 0, HW = 0, G = 1;
  bool nhwc = false;
  RASS_GN_HD int64_t D() const { return C / G; }
  RASS_GN_HD int64_t chunks() const {
    return nhwc ? (HW + kChunkPixels - 1) / kChunkPixels : (D() * HW + kChunkValues - 1) / kChunkValues;
  }
  // The channel and the batch index of element i in memory order.
  RASS_GN_HD int64_t channel(int64_t i) const { return nhwc ? i % C : (i / HW) % C; }
  RASS_GN_HD int64_t batch(int64_t i) const { return i / (HW * C); }
};

struct Partial {
  float n, mean, m2;  // count, mean, sum of squared deviations
};

// A Partial from n values' sums of (x - k) and (x - k)^2.
RASS_GN_HD Partial from_shifted_sums(float n, float k, float s, float ss) {
  const float d = s / n;
  const float m2 = ss - s * d;
  return Partial{n, k + d, m2 > 0.f ? m2 : 0.f};
}

// Chan et al.: the Partial of the union of a's and b's values (float; the
// channels of one NHWC chunk).
RASS_GN_HD Partial merge(const Partial& a, const Partial& b) {
  const float n = a.n + b.n;
  if (n == 0.f) return a;
  const float delta = b.mean - a.mean, fb = b.n / n;
  return Partial{n, a.mean + delta * fb, a.m2 + b.m2 + delta * delta * a.n * fb};
}

// The same in double (the chunks of a group: up to millions of values).
struct Moments {
  double n = 0, mean = 0, m2 = 0;
};
RASS_GN_HD void add(Moments& a, const Partial& b) {
  const double n = a.n + double(b.n);
  if (n == 0) return;
  const double delta = double(b.mean) - a.mean, fb = double(b.n) / n;
  a.mean += delta * fb;
  a.m2 += double(b.m2) + delta * delta * a.n * fb;
  a.n = n;
}

// Scale and shift of the channels of group g of batch item n from the
// group's chunks' Partials ([N, G, chunks]); weight and bias may be null.
RASS_GN_HD void finalize_group(const Shape& s, int64_t n, int64_t g, const Partial* partials, const float* weight,
                               const float* bias, float eps, float* scale, float* shift) {
  const int64_t chunks = s.chunks();
  const Partial* p = partials + (n * s.G + g) * chunks;
  Moments m;
  for (int64_t k = 0; k < chunks; ++k) add(m, p[k]);
  const double var = m.n > 0 ? m.m2 / m.n : 0.0;
  const double rstd = 1.0 / sqrt(var + double(eps));
  const int64_t D = s.D();
  for (int64_t c = g * D; c < (g + 1) * D; ++c) {
    const double w = weight ? double(weight[c]) : 1.0, b = bias ? double(bias[c]) : 0.0;
    scale[n * s.C + c] = float(w * rstd);
    shift[n * s.C + c] = float(b - m.mean * w * rstd);
  }
}

// One output value from its input value (as float) and its channel's scale and shift.
RASS_GN_HD float apply(float x, float scale, float shift, bool silu) {
  const float y = x * scale + shift;
  return silu ? y / (1.0f + expf(-y)) : y;
}

// The range of one chunk: NCHW, values [begin, end) of the group's D * HW;
// NHWC, pixels [begin, end).
RASS_GN_HD void chunk_range(const Shape& s, int64_t chunk, int64_t& begin, int64_t& end) {
  const int64_t step = s.nhwc ? kChunkPixels : kChunkValues, total = s.nhwc ? s.HW : s.D() * s.HW;
  begin = chunk * step;
  end = begin + step < total ? begin + step : total;
}

}  // namespace rass::nn::gn
