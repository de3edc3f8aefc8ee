#include "rass/scenes/paint.hpp"

#include <algorithm>
#include <cmath>

#include "rass/core/rng.hpp"

namespace rass::scenes {

Rgb mix(const Rgb& a, const Rgb& b, double t) {
  const float u = float(t);
  return {a.r + (b.r - a.r) * u, a.g + (b.g - a.g) * u, a.b + (b.b - a.b) * u};
}
Rgb scale(const Rgb& a, double k) { return {float(a.r * k), float(a.g * k), float(a.b * k)}; }

namespace {

inline double lattice(int64_t ix, int64_t iy, uint64_t seed) {
  const uint64_t h = mix64(seed ^ mix64(uint64_t(ix) * 0x9E3779B97F4A7C15ULL + uint64_t(iy)));
  return double(h >> 11) * 0x1.0p-53;
}
inline double smooth(double t) { return t * t * (3 - 2 * t); }
inline double frac(double v) { return v - std::floor(v); }

}  // namespace

double value_noise(double x, double y, uint64_t seed) {
  const double fx = std::floor(x), fy = std::floor(y);
  const int64_t ix = int64_t(fx), iy = int64_t(fy);
  const double tx = smooth(x - fx), ty = smooth(y - fy);
  const double a = lattice(ix, iy, seed), b = lattice(ix + 1, iy, seed);
  const double c = lattice(ix, iy + 1, seed), d = lattice(ix + 1, iy + 1, seed);
  return (a + (b - a) * tx) * (1 - ty) + (c + (d - c) * tx) * ty;
}

double fbm(double x, double y, uint64_t seed, int octaves) {
  double sum = 0, norm = 0, amp = 1, f = 1;
  for (int o = 0; o < octaves; ++o) {
    sum += amp * value_noise(x * f, y * f, seed + uint64_t(o) * 7919);
    norm += amp;
    amp *= 0.5;
    f *= 2;
  }
  return sum / norm;
}

double fbm1(double x, uint64_t seed, int octaves) { return fbm(x, 0.5, seed, octaves); }

Rgb Paint::at(double x, double y) const {
  // Pattern coordinates: rotated by `angle`, in units of `size`.
  double gx = x, gy = y, fade = 1;
  if (ground_k > 0 && pattern != Pattern::vgradient) {
    const double d = std::max(y - ground_h, 0.25);
    gx = ground_cx + (x - ground_cx) * ground_k / d;
    gy = ground_k * ground_k / d;
    fade = std::clamp(4 * d / ground_k, 0.0, 1.0);
  }
  const double ca = std::cos(angle), sa = std::sin(angle);
  const double u = (gx * ca + gy * sa) / size, v = (-gx * sa + gy * ca) / size;
  double t = 0;  // 0: colour a, 1: colour b
  switch (pattern) {
    case Pattern::flat:
      break;
    case Pattern::noise:
      t = fbm(u, v, seed, 3);
      break;
    case Pattern::stripes:
      t = 0.5 + 0.5 * std::sin(2 * M_PI * v);
      t = t > 0.5 ? 1 : 0;
      break;
    case Pattern::bricks: {
      // Rows of bricks 2 units long, every other row offset by one; mortar lines are colour b.
      const double row = std::floor(v);
      const double bu = u * 0.5 + (int64_t(row) % 2 ? 0.5 : 0);
      const double mu = frac(bu), mv = frac(v);
      const bool mortar = mv < 0.12 || mu < 0.06;
      t = mortar ? 1 : 0.25 * lattice(int64_t(std::floor(bu)), int64_t(row), seed);
      break;
    }
    case Pattern::leaves: {
      // Blobs of light and dark foliage: thresholded noise at two scales.
      const double n = fbm(u, v, seed, 4);
      t = std::clamp((n - 0.35) * 2.5, 0.0, 1.0);
      break;
    }
    case Pattern::planks: {
      const double row = std::floor(v);
      const double g = fbm(u * 0.15, v * 3 + row * 13.1, seed, 2);  // wood grain along the plank
      t = frac(v) < 0.08 ? 1 : 0.6 * g * (0.7 + 0.6 * lattice(int64_t(row), 0, seed));
      break;
    }
    case Pattern::tiles: {
      const double mu = frac(u), mv = frac(v);
      const bool grout = mu < 0.07 || mv < 0.07;
      t = grout ? 1 : 0.3 * lattice(int64_t(std::floor(u)), int64_t(std::floor(v)), seed);
      break;
    }
    case Pattern::waves: {
      const double n = fbm(u * 0.3, v * 2.0, seed, 3);
      t = 0.5 + 0.5 * std::sin(2 * M_PI * (v + 1.5 * n));
      t = t * t * t;
      break;
    }
    case Pattern::blades: {
      // Vertical streaks: noise stretched along y.
      t = fbm(u * 1.0, v * 0.12, seed, 3);
      t = std::clamp((t - 0.3) * 1.8, 0.0, 1.0);
      break;
    }
    case Pattern::vgradient:
      t = std::clamp((y - y0) / std::max(1e-6, y1 - y0), 0.0, 1.0);
      break;
  }
  Rgb c = mix(a, b, fade * t + (1 - fade) * 0.3);
  if (grain > 0) {
    const double g = 1 + grain * (2 * value_noise(x * 0.9, y * 0.9, seed ^ 0x5bd1e995) - 1);
    c = scale(c, g);
  }
  return c;
}

}  // namespace rass::scenes
