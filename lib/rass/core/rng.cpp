#include "rass/core/rng.hpp"

#include <cmath>

namespace rass {

uint64_t fnv1a64(std::string_view s, uint64_t h) {
  for (unsigned char c : s) {
    h ^= c;
    h *= 0x100000001b3ULL;
  }
  return h;
}

uint64_t mix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

uint64_t stream_seed(uint64_t seed, std::string_view key, std::string_view stream) {
  // A 0 byte separates key and stream so ("ab","c") and ("a","bc") differ.
  uint64_t h = fnv1a64(key, mix64(seed));
  h = fnv1a64(std::string_view("\0", 1), h);
  h = fnv1a64(stream, h);
  return mix64(h);
}

Rng::Rng(uint64_t seed) {
  uint64_t x = seed;
  for (auto& s : s_) {
    x += 0x9e3779b97f4a7c15ULL;
    uint64_t z = x;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    s = z ^ (z >> 31);
  }
}

static inline uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

uint64_t Rng::next_u64() {
  const uint64_t result = rotl(s_[1] * 5, 7) * 9;
  const uint64_t t = s_[1] << 17;
  s_[2] ^= s_[0];
  s_[3] ^= s_[1];
  s_[1] ^= s_[2];
  s_[0] ^= s_[3];
  s_[2] ^= t;
  s_[3] = rotl(s_[3], 45);
  return result;
}

double Rng::normal() {
  if (has_spare_) {
    has_spare_ = false;
    return spare_;
  }
  // 1 - uniform() is in (0, 1], so the log is finite.
  const double u1 = 1.0 - uniform();
  const double u2 = uniform();
  const double r = std::sqrt(-2.0 * std::log(u1));
  const double a = 2.0 * M_PI * u2;
  spare_ = r * std::sin(a);
  has_spare_ = true;
  return r * std::cos(a);
}

namespace {
// Ziggurat tables for the standard normal, built once from the published
// constants (r = 3.442619855899, v = 9.91256303526217e-3).
struct Ziggurat {
  uint32_t k[128];
  double w[128], f[128];
  Ziggurat() {
    const double m1 = 2147483648.0;
    double dn = 3.442619855899, tn = dn;
    const double vn = 9.91256303526217e-3;
    const double q = vn / std::exp(-0.5 * dn * dn);
    k[0] = uint32_t((dn / q) * m1);
    k[1] = 0;
    w[0] = q / m1;
    w[127] = dn / m1;
    f[0] = 1.0;
    f[127] = std::exp(-0.5 * dn * dn);
    for (int i = 126; i >= 1; --i) {
      dn = std::sqrt(-2.0 * std::log(vn / dn + std::exp(-0.5 * dn * dn)));
      k[i + 1] = uint32_t((dn / tn) * m1);
      tn = dn;
      f[i] = std::exp(-0.5 * dn * dn);
      w[i] = dn / m1;
    }
  }
};
const Ziggurat& ziggurat() {
  static const Ziggurat z;
  return z;
}
}  // namespace

float Rng::normal_fast() {
  static const Ziggurat& z = ziggurat();
  constexpr double r = 3.442619855899;
  for (;;) {
    const uint64_t bits = next_u64();
    const int32_t hz = int32_t(uint32_t(bits >> 32));
    const int iz = int(bits & 127);
    const uint32_t ahz = hz < 0 ? uint32_t(-(int64_t)hz) : uint32_t(hz);
    const double x = hz * z.w[iz];
    if (ahz < z.k[iz]) return float(x);  // inside the layer's rectangle: ~99% of draws
    if (iz == 0) {  // the tail beyond r
      double tx, ty;
      do {
        tx = -std::log(1.0 - uniform()) / r;
        ty = -std::log(1.0 - uniform());
      } while (ty + ty < tx * tx);
      return float(hz > 0 ? r + tx : -r - tx);
    }
    // The wedge between rectangle and curve.
    if (z.f[iz] + uniform() * (z.f[iz - 1] - z.f[iz]) < std::exp(-0.5 * x * x)) return float(x);
  }
}

uint64_t Rng::below(uint64_t n) {
  // Lemire's nearly-divisionless method would be faster; rejection keeps it obviously unbiased.
  const uint64_t limit = UINT64_MAX - UINT64_MAX % n;
  uint64_t x;
  do x = next_u64();
  while (x >= limit);
  return x % n;
}

size_t Rng::choice(const std::vector<double>& weights) {
  double total = 0;
  for (double w : weights) total += w;
  double u = uniform() * total;
  for (size_t i = 0; i < weights.size(); ++i) {
    if (u < weights[i]) return i;
    u -= weights[i];
  }
  // Rounding can leave u just above the last bucket: return the last non-zero weight.
  for (size_t i = weights.size(); i-- > 0;)
    if (weights[i] > 0) return i;
  return 0;
}

}  // namespace rass
