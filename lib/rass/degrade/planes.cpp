#include "rass/degrade/planes.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "rass/core/error.hpp"

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

namespace rass::degrade {

namespace {

// Interleaved samples -> planes through a table of the 256 (or 65536) quotients:
// the same floats as dividing each sample, without a division per sample.
template <class T>
void deinterleave(const T* s, int c, size_t n, const float* table, Planes& p) {
  if (c == 1) {
    float* d = p.plane(0);
    for (size_t i = 0; i < n; ++i) d[i] = table[s[i]];
    return;
  }
  float* d0 = p.plane(0);
  float* d1 = p.plane(1);
  float* d2 = p.plane(2);
  for (size_t i = 0; i < n; ++i) {
    d0[i] = table[s[3 * i]];
    d1[i] = table[s[3 * i + 1]];
    d2[i] = table[s[3 * i + 2]];
  }
}

// q[i] = round_to_byte(s[i]); SSE2 does four at a time with the same IEEE
// operations (mul, clamp, the 1.5 * 2^23 rounding), so the bytes are equal.
void quantise(const float* s, size_t m, uint8_t* q) {
  size_t i = 0;
#if defined(__SSE2__)
  const __m128i zero = _mm_setzero_si128();
  const __m128 scale = _mm_set1_ps(255.0f), lo = _mm_setzero_ps(), hi = _mm_set1_ps(255.0f),
               magic = _mm_set1_ps(12582912.0f);
  for (; i + 4 <= m; i += 4) {
    __m128 x = _mm_mul_ps(_mm_loadu_ps(s + i), scale);
    x = _mm_min_ps(_mm_max_ps(x, lo), hi);  // as round_to_byte's clamp (NaN -> 0 both ways)
    x = _mm_sub_ps(_mm_add_ps(x, magic), magic);
    const __m128i v = _mm_packus_epi16(_mm_packs_epi32(_mm_cvttps_epi32(x), zero), zero);
    const int four = _mm_cvtsi128_si32(v);
    std::memcpy(q + i, &four, 4);
  }
#endif
  for (; i < m; ++i) q[i] = static_cast<uint8_t>(round_to_byte(s[i]));
}

}  // namespace

Planes to_planes(const Image& img) {
  if (img.channels != 1 && img.channels != 3)
    throw_runtime("to_planes: expected 1 or 3 channels, got " + std::to_string(img.channels));
  Planes p(img.width, img.height, img.channels);
  const size_t n = p.plane_size();
  if (img.depth == 8) {
    static const std::vector<float> table = [] {
      std::vector<float> t(256);
      for (int v = 0; v < 256; ++v) t[v] = v / 255.0f;
      return t;
    }();
    deinterleave(img.u8(), img.channels, n, table.data(), p);
  } else {
    static const std::vector<float> table = [] {
      std::vector<float> t(65536);
      for (int v = 0; v < 65536; ++v) t[v] = v / 65535.0f;
      return t;
    }();
    deinterleave(img.u16(), img.channels, n, table.data(), p);
  }
  return p;
}

Image to_image8(const Planes& p) {
  Image img(p.width, p.height, p.channels, 8);
  const size_t n = p.plane_size();
  const int c = p.channels;
  uint8_t* d = img.u8();
  if (c != 3) {
    for (int k = 0; k < c; ++k) {
      const float* s = p.plane(k);
      for (size_t i = 0; i < n; ++i) d[i * c + k] = static_cast<uint8_t>(round_to_byte(s[i]));
    }
    return img;
  }
  // RGB: each plane is quantised in blocks (a loop the compiler vectorises),
  // then the block is interleaved; per sample the arithmetic is the same.
  constexpr size_t kBlock = 512;
  uint8_t q[3][kBlock];
  for (size_t i0 = 0; i0 < n; i0 += kBlock) {
    const size_t m = std::min(kBlock, n - i0);
    for (int k = 0; k < 3; ++k) quantise(p.plane(k) + i0, m, q[k]);
    uint8_t* o = d + 3 * i0;
    for (size_t i = 0; i < m; ++i) {
      o[3 * i] = q[0][i];
      o[3 * i + 1] = q[1][i];
      o[3 * i + 2] = q[2][i];
    }
  }
  return img;
}

}  // namespace rass::degrade
