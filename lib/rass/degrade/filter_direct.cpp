#include "rass/degrade/filter_direct.hpp"

#include <cstring>
#include <vector>

namespace rass::degrade {

namespace {

// OpenCV's borderInterpolate for BORDER_REFLECT_101 (gfedcb|abcdefgh|gfedcba),
// repeated for borders wider than the image.
int reflect101(int p, int n) {
  if (n == 1) return 0;
  while (p < 0 || p >= n) p = p < 0 ? -p : 2 * n - 2 - p;
  return p;
}

// GCC vector type: 8 floats, one AVX register or two SSE registers.
typedef float f8 __attribute__((vector_size(32)));
// The helpers below are always inlined into the two compilations, so the ABI of a
// 32-byte vector return without AVX (what -Wpsabi warns of) never arises.
#pragma GCC diagnostic ignored "-Wpsabi"
constexpr int kBlock = 32;  // outputs per inner step: four 8-float vectors

inline __attribute__((always_inline)) f8 load8(const float* p) {
  f8 v;
  std::memcpy(&v, p, sizeof v);
  return v;
}
inline __attribute__((always_inline)) void store8(float* p, f8 v) { std::memcpy(p, &v, sizeof v); }

struct Taps {
  bool symmetric = false;    // k[t] == k[n-1-t] for every t (point symmetry)
  std::vector<float> k;      // row-major, float32 as the reference's conv2d
  std::vector<size_t> at;    // offset of tap t in the padded rows: row * stride + column
};

// One output row from the padded rows starting at `rows`, `width8` outputs (a
// multiple of kBlock). Compiled twice below: for AVX2, and for the baseline
// (the same vector arithmetic as SSE2 pairs). Tap offsets are precomputed: a
// division per tap here cost more than the arithmetic.
inline __attribute__((always_inline)) void filter_row(const float* rows, int width8, const Taps& taps, float* out) {
  const size_t n = taps.k.size();
  const size_t* at = taps.at.data();
  const float* k = taps.k.data();
  // A point-symmetric kernel: pairs (t, n-1-t) for t before the centre, then
  // the centre alone; any other kernel: every tap alone.
  const size_t pairs = taps.symmetric ? n / 2 : 0;
  const size_t singles_end = taps.symmetric ? pairs + (n & 1) : n;  // the centre of an odd size
  for (int x = 0; x < width8; x += kBlock) {
    f8 a0 = {}, a1 = {}, a2 = {}, a3 = {};
    const float* base = rows + x;
    for (size_t t = 0; t < pairs; ++t) {
      const f8 kv = k[t] - f8{};
      const float* p = base + at[t];
      const float* q = base + at[n - 1 - t];
      a0 += kv * (load8(p) + load8(q));
      a1 += kv * (load8(p + 8) + load8(q + 8));
      a2 += kv * (load8(p + 16) + load8(q + 16));
      a3 += kv * (load8(p + 24) + load8(q + 24));
    }
    for (size_t t = pairs; t < singles_end; ++t) {
      const f8 kv = k[t] - f8{};
      const float* p = base + at[t];
      a0 += kv * load8(p);
      a1 += kv * load8(p + 8);
      a2 += kv * load8(p + 16);
      a3 += kv * load8(p + 24);
    }
    store8(out + x, a0);
    store8(out + x + 8, a1);
    store8(out + x + 16, a2);
    store8(out + x + 24, a3);
  }
}

#if defined(__x86_64__) || defined(__i386__)
__attribute__((target("avx2"))) void filter_row_avx2(const float* rows, int width8, const Taps& taps, float* out) {
  filter_row(rows, width8, taps, out);
}
#endif
void filter_row_baseline(const float* rows, int width8, const Taps& taps, float* out) {
  filter_row(rows, width8, taps, out);
}

}  // namespace

Planes filter2d_direct(const Planes& in, const Kernel& k, bool baseline_only) {
  if (in.width < 1 || in.height < 1 || in.channels < 1) return Planes(in.width, in.height, in.channels);
  auto* row_fn = filter_row_baseline;
#if defined(__x86_64__) || defined(__i386__)
  static const bool has_avx2 = __builtin_cpu_supports("avx2");
  if (has_avx2 && !baseline_only) row_fn = filter_row_avx2;
#endif
  const int r = k.size / 2;
  const int width8 = (in.width + kBlock - 1) / kBlock * kBlock;
  // Padded rows: the reflected border, then zeros up to what the last block reads.
  const size_t stride = size_t(width8) + 2 * r;
  Taps taps;
  taps.k.assign(k.k.begin(), k.k.end());
  taps.symmetric = true;
  for (size_t t = 0; t < taps.k.size(); ++t) {
    taps.symmetric = taps.symmetric && taps.k[t] == taps.k[taps.k.size() - 1 - t];
    taps.at.push_back(t / k.size * stride + t % k.size);
  }

  const int rows = in.height + 2 * r;
  std::vector<float> pad(stride * rows, 0.f);
  std::vector<int> col(in.width + 2 * r);
  for (int x = 0; x < in.width + 2 * r; ++x) col[x] = reflect101(x - r, in.width);
  std::vector<float> line(width8);
  Planes out(in.width, in.height, in.channels);
  for (int c = 0; c < in.channels; ++c) {
    const float* src = in.plane(c);
    for (int y = 0; y < rows; ++y) {
      const float* s = src + size_t(reflect101(y - r, in.height)) * in.width;
      float* d = pad.data() + size_t(y) * stride;
      std::memcpy(d + r, s, sizeof(float) * in.width);
      for (int x = 0; x < r; ++x) {
        d[x] = s[col[x]];
        d[r + in.width + x] = s[col[r + in.width + x]];
      }
    }
    float* dst = out.plane(c);
    for (int y = 0; y < in.height; ++y) {
      row_fn(pad.data() + size_t(y) * stride, width8, taps, line.data());
      std::memcpy(dst + size_t(y) * in.width, line.data(), sizeof(float) * in.width);
    }
  }
  return out;
}

}  // namespace rass::degrade
