// The element code of multi-scale deformable attention, shared by the CUDA
// kernels (ms_deform_attn_cuda.cu) and the CPU loops the tests run
// (ms_deform_attn.cpp), so what the CPU tests check is what the GPU runs; only
// the mapping of elements to threads differs. No LibTorch here: nvcc compiles
// this without the LibTorch headers (seconds, not minutes).
//
// Sampling is grid_sample's (bilinear, zero padding, align_corners false), as
// Deformable DETR's ms_deform_attn_im2col_bilinear: a location (x, y) in
// [0, 1] is the pixel position (x W - 0.5, y H - 0.5) of its level, corners
// outside the level count 0.
//
// Layouts (contiguous, row-major), as ms_deform_attn_core's:
//   value     [N, S, M, D]        (S = sum of the levels' H W)
//   locations [N, Lq, M, L, P, 2] (x, y), float
//   weights   [N, Lq, M, L, P]    float
//   output    [N, Lq, M, D]       float
#pragma once
#include <cmath>
#include <cstdint>

#include "rass/nn/kernel_load.hpp"

#if defined(__CUDACC__)
#define RASS_MSDA_HD __host__ __device__ __forceinline__
#else
#define RASS_MSDA_HD inline
#endif

namespace rass::nn::msda {

constexpr int kMaxLevels = 8;

struct Geometry {
  int64_t N = 0, S = 0, M = 0, D = 0, Lq = 0, L = 0, P = 0;
  int64_t H[kMaxLevels] = {}, W[kMaxLevels] = {}, start[kMaxLevels] = {};
};

// The four corners of one bilinear sample: their value offsets (-1 = outside
// the level) and weights.
struct Corners {
  int64_t at[4];
  float w[4];
  float lh, lw;  // fractional position inside the cell (gradient of the location)
};

// false when the location lies wholly outside the level (the sample is 0).
RASS_MSDA_HD bool corners(const Geometry& g, int64_t n, int64_t m, int l, float x, float y, Corners& c) {
  const int64_t H = g.H[l], W = g.W[l];
  const float h_im = y * static_cast<float>(H) - 0.5f, w_im = x * static_cast<float>(W) - 0.5f;
  if (!(h_im > -1.f && w_im > -1.f && h_im < static_cast<float>(H) && w_im < static_cast<float>(W))) return false;
  const int64_t h0 = static_cast<int64_t>(floorf(h_im)), w0 = static_cast<int64_t>(floorf(w_im));
  const int64_t h1 = h0 + 1, w1 = w0 + 1;
  c.lh = h_im - static_cast<float>(h0);
  c.lw = w_im - static_cast<float>(w0);
  const float hh = 1.f - c.lh, hw = 1.f - c.lw;
  const int64_t base = (n * g.S + g.start[l]) * g.M + m;  // value[n, start + 0, m, 0] / D
  auto off = [&](int64_t h, int64_t w) { return (h >= 0 && w >= 0 && h < H && w < W) ? (base + (h * W + w) * g.M) * g.D : int64_t(-1); };
  c.at[0] = off(h0, w0);
  c.at[1] = off(h0, w1);
  c.at[2] = off(h1, w0);
  c.at[3] = off(h1, w1);
  c.w[0] = hh * hw;
  c.w[1] = hh * c.lw;
  c.w[2] = c.lh * hw;
  c.w[3] = c.lh * c.lw;
  return true;
}

// output[n, q, m, d] = sum over levels and points of weight * sample.
template <class T>
RASS_MSDA_HD float forward_element(const Geometry& g, const T* value, const float* loc, const float* attn, int64_t n,
                                   int64_t q, int64_t m, int64_t d) {
  float acc = 0.f;
  const int64_t pt0 = ((n * g.Lq + q) * g.M + m) * g.L * g.P;
  for (int l = 0; l < g.L; ++l) {
    for (int64_t p = 0; p < g.P; ++p) {
      const int64_t pt = pt0 + l * g.P + p;
      Corners c;
      if (!corners(g, n, m, l, loc[2 * pt], loc[2 * pt + 1], c)) continue;
      float s = 0.f;
      for (int k = 0; k < 4; ++k)
        if (c.at[k] >= 0) s += c.w[k] * load_float(value + c.at[k] + d);
      acc += attn[pt] * s;
    }
  }
  return acc;
}

// The gradients of one sampling point (n, q, m, l, p) from grad_out [N, Lq, M, D]:
// grad_loc (x, y) and grad_attn are this point's alone (written); grad_value
// gets add(ptr, v) at the four corners (atomicAdd on the GPU: points share corners).
template <class Add>
RASS_MSDA_HD void backward_point(const Geometry& g, const float* value, const float* loc, const float* attn,
                                 const float* grad_out, int64_t n, int64_t q, int64_t m, int l, int64_t p,
                                 float* grad_value, float* grad_loc, float* grad_attn, Add add) {
  const int64_t pt = (((n * g.Lq + q) * g.M + m) * g.L + l) * g.P + p;
  float ga = 0.f, gx = 0.f, gy = 0.f;
  Corners c;
  if (corners(g, n, m, l, loc[2 * pt], loc[2 * pt + 1], c)) {
    const float a = attn[pt];
    const float hh = 1.f - c.lh, hw = 1.f - c.lw;
    const float* go = grad_out + ((n * g.Lq + q) * g.M + m) * g.D;
    for (int64_t d = 0; d < g.D; ++d) {
      float v[4];
      for (int k = 0; k < 4; ++k) v[k] = c.at[k] >= 0 ? value[c.at[k] + d] : 0.f;
      const float gd = go[d];
      ga += gd * (c.w[0] * v[0] + c.w[1] * v[1] + c.w[2] * v[2] + c.w[3] * v[3]);
      // d sample / d lw and d lh; the location's x moves w_im by W, y moves h_im by H.
      gx += gd * a * (-hh * v[0] + hh * v[1] - c.lh * v[2] + c.lh * v[3]);
      gy += gd * a * (-hw * v[0] - c.lw * v[1] + hw * v[2] + c.lw * v[3]);
      for (int k = 0; k < 4; ++k)
        if (c.at[k] >= 0) add(grad_value + c.at[k] + d, gd * a * c.w[k]);
    }
    gx *= static_cast<float>(g.W[l]);
    gy *= static_cast<float>(g.H[l]);
  }
  grad_attn[pt] = ga;
  grad_loc[2 * pt] = gx;
  grad_loc[2 * pt + 1] = gy;
}

}  // namespace rass::nn::msda
