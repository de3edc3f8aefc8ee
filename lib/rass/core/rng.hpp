// Random numbers keyed by (seed, item key, stream name): every draw for an
// item depends only on these, never on thread count, shard or order.
// Generator: xoshiro256** seeded through SplitMix64 (public-domain algorithms
// by Blackman and Vigna), implemented here from their published description.
#pragma once
#include <cstdint>
#include <string_view>
#include <vector>

namespace rass {

// 64-bit FNV-1a; stable across platforms, used to turn keys into seeds.
uint64_t fnv1a64(std::string_view s, uint64_t h = 0xcbf29ce484222325ULL);
// SplitMix64 finaliser: a bijective 64-bit mix.
uint64_t mix64(uint64_t x);
// The 64-bit seed of stream `stream` for item `key` under global `seed`.
uint64_t stream_seed(uint64_t seed, std::string_view key, std::string_view stream);

class Rng {
 public:
  explicit Rng(uint64_t seed);
  Rng(uint64_t seed, std::string_view key, std::string_view stream)
      : Rng(stream_seed(seed, key, stream)) {}

  uint64_t next_u64();
  // Uniform in [0, 1) with 53 random bits.
  double uniform() { return static_cast<double>(next_u64() >> 11) * 0x1.0p-53; }
  // Uniform in [lo, hi).
  double uniform(double lo, double hi) { return lo + (hi - lo) * uniform(); }
  // Standard normal (Box-Muller; the second value of each pair is kept).
  double normal();
  // Standard normal by the ziggurat method (Marsaglia & Tsang 2000, 128 layers),
  // ~4x faster than normal(); used for noise fields. Layer index and value come
  // from separate bits of one 64-bit draw (Doornik 2005's fix of the original).
  float normal_fast();
  // Index drawn with probability proportional to weights (which need not sum to 1).
  size_t choice(const std::vector<double>& weights);
  // Uniform integer in [0, n).
  uint64_t below(uint64_t n);

 private:
  uint64_t s_[4];
  double spare_ = 0;
  bool has_spare_ = false;
};

}  // namespace rass
