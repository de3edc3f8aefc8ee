#include "rass/degrade/noise.hpp"

#include "rass/degrade/planes.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <vector>

namespace rass::degrade {

namespace {

inline float clamp01(float v) { return v < 0.f ? 0.f : (v > 1.f ? 1.f : v); }

// Inverse-CDF tables of Poisson(level/255 * vals) for the 256 quantised levels.
// Levels are exact multiples of 1/255, so 256 tables cover every draw; they are
// built once per vals (a power of two up to 256) and shared by all threads.
// The guide table (Chen & Asau) gives the answer outright for most draws: a
// bucket [g, g+1) / kGuide that lies inside one k's step of the CDF is marked
// kCertain and needs no look at the CDF (whose scattered loads were the cost).
// The result is the inverse CDF either way, whatever kGuide is.
struct PoissonCdf {
  std::vector<double> cdf;      // cdf[k] = P(X <= k), last entry forced to 1
  std::vector<uint16_t> guide;  // smallest k with cdf[k] > g / kGuide, | kCertain
};
constexpr int kGuide = 256;             // a power of two: u * kGuide is exact
constexpr uint16_t kCertain = 0x8000;  // every u in the bucket has this k
struct PoissonTables {
  std::array<PoissonCdf, 256> level;
};

const PoissonTables& poisson_tables(int vals) {
  static std::mutex mu;
  static std::array<std::unique_ptr<PoissonTables>, 9> cache;  // vals = 2^0 .. 2^8
  int slot = 0;
  while ((1 << slot) < vals) ++slot;
  std::lock_guard<std::mutex> lock(mu);
  if (!cache[slot]) {
    auto t = std::make_unique<PoissonTables>();
    for (int level = 0; level < 256; ++level) {
      // The reference computes lambda in float32: (level/255 as float) * vals.
      const double lambda = double(float(level) / 255.0f * float(vals));
      auto& cdf = t->level[level].cdf;
      if (lambda == 0) {
        cdf.push_back(1.0);
        t->level[level].guide.assign(kGuide, kCertain);  // always 0
        continue;
      }
      // Accumulate pmf in log space to avoid underflow for large lambda.
      double acc = 0;
      for (int k = 0;; ++k) {
        double logp = -lambda + k * std::log(lambda) - std::lgamma(k + 1.0);
        acc += std::exp(logp);
        cdf.push_back(acc);
        if (k > lambda && (1.0 - acc < 1e-17 || std::exp(logp) < 1e-300)) break;
      }
      cdf.back() = 1.0;
      if (cdf.size() >= kCertain) throw std::logic_error("Poisson table: too many levels for the guide");
      // The search for u starts at guide[floor(u * kGuide)]; when cdf there
      // already reaches the bucket's upper end, every u in the bucket stops there.
      auto& guide = t->level[level].guide;
      for (int g = 0; g < kGuide; ++g) {
        const size_t k = size_t(std::upper_bound(cdf.begin(), cdf.end(), double(g) / kGuide) - cdf.begin());
        const bool certain = cdf[k] >= double(g + 1) / kGuide;
        guide.push_back(uint16_t(k | (certain ? kCertain : 0)));
      }
    }
    cache[slot] = std::move(t);
  }
  return *cache[slot];
}

// Inverse CDF: the smallest k with cdf[k] > u.
inline int sample_poisson(const PoissonCdf& p, Rng& rng) {
  const double u = rng.uniform();
  const uint16_t g = p.guide[int(u * kGuide)];
  if (g & kCertain) return g & ~kCertain;
  int k = g;
  while (p.cdf[k] <= u) ++k;
  return k;
}

inline int quantise(float v) { return int(round_to_byte(v)); }

int vals_for(const std::vector<uint8_t>& levels) {
  bool seen[256] = {};
  int unique = 0;
  for (uint8_t l : levels)
    if (!seen[l]) seen[l] = true, ++unique;
  int vals = 1;
  while (vals < unique) vals *= 2;  // 2^ceil(log2(unique))
  return vals;
}

// Poisson noise field (in [0,1] units, not yet scaled) of one quantised plane.
void poisson_field(const std::vector<uint8_t>& levels, int vals, Rng& rng, std::vector<float>& noise) {
  const PoissonTables& t = poisson_tables(vals);
  noise.resize(levels.size());
  for (size_t i = 0; i < levels.size(); ++i) {
    const int l = levels[i];
    const float q = float(l) / 255.0f;
    noise[i] = float(sample_poisson(t.level[l], rng)) / float(vals) - q;
  }
}

}  // namespace

void add_gaussian_noise(Planes& img, double sigma, bool gray, Rng& rng) {
  const float s = float(sigma / 255.0);
  const size_t n = img.plane_size();
  if (gray) {
    std::vector<float> field(n);
    for (auto& v : field) v = rng.normal_fast() * s;
    for (int c = 0; c < img.channels; ++c) {
      float* p = img.plane(c);
      for (size_t i = 0; i < n; ++i) p[i] = clamp01(p[i] + field[i]);
    }
  } else {
    for (int c = 0; c < img.channels; ++c) {
      float* p = img.plane(c);
      std::vector<float> field(n);
      for (auto& v : field) v = rng.normal_fast() * s;
      for (size_t i = 0; i < n; ++i) p[i] = clamp01(p[i] + field[i]);
    }
  }
}

int add_poisson_noise(Planes& img, double scale, bool gray, Rng& rng) {
  const size_t n = img.plane_size();
  const float sc = float(scale);
  std::vector<float> noise;
  if (gray && img.channels == 3) {
    std::vector<uint8_t> levels(n);
    const float *r = img.plane(0), *g = img.plane(1), *b = img.plane(2);
    for (size_t i = 0; i < n; ++i) levels[i] = uint8_t(quantise(0.2989f * r[i] + 0.587f * g[i] + 0.114f * b[i]));
    const int vals = vals_for(levels);
    poisson_field(levels, vals, rng, noise);
    for (int c = 0; c < 3; ++c) {
      float* p = img.plane(c);
      for (size_t i = 0; i < n; ++i) p[i] = clamp01(p[i] + noise[i] * sc);
    }
    return vals;
  }
  // Colour noise: unique values are counted over all channels together.
  std::vector<uint8_t> levels(n * img.channels);
  for (size_t i = 0; i < levels.size(); ++i) levels[i] = uint8_t(quantise(img.data[i]));
  const int vals = vals_for(levels);
  poisson_field(levels, vals, rng, noise);
  for (size_t i = 0; i < levels.size(); ++i) img.data[i] = clamp01(img.data[i] + noise[i] * sc);
  return vals;
}

}  // namespace rass::degrade
