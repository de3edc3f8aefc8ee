// Which dataset item a training sample uses: the samples of all steps form
// one stream (step * global_batch + sample), cut into epochs of n items; each
// epoch visits every item once, in a permutation keyed by (seed, epoch).
// A pure function of its arguments, so --resume, any process count and any
// thread see the same order (stage.hpp's determinism contract).
#pragma once
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <vector>

namespace rass::train {

class DataOrder {
 public:
  // n items (> 0), `seed` the run's seed.
  DataOrder(size_t n, uint64_t seed);
  // The item of global sample `sample` (0 <= sample < global_batch) of `step`.
  size_t item(int64_t step, int64_t global_batch, int64_t sample) const;
  // The epoch that sample belongs to (for logs).
  int64_t epoch(int64_t step, int64_t global_batch, int64_t sample) const;
  size_t size() const { return n_; }

 private:
  size_t n_;
  uint64_t seed_;
  mutable std::mutex mu_;
  mutable int64_t cached_epoch_ = -1;
  mutable std::vector<size_t> perm_;  // the cached epoch's permutation
};

// The permutation of epoch `epoch`: Fisher-Yates driven by rass::Rng keyed by
// (seed, "epoch <e>", "data-order").
std::vector<size_t> epoch_permutation(size_t n, uint64_t seed, int64_t epoch);

}  // namespace rass::train
