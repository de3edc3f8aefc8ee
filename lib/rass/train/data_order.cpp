#include "rass/train/data_order.hpp"

#include <string>

#include "rass/core/error.hpp"
#include "rass/core/rng.hpp"

namespace rass::train {

std::vector<size_t> epoch_permutation(size_t n, uint64_t seed, int64_t epoch) {
  std::vector<size_t> p(n);
  for (size_t i = 0; i < n; ++i) p[i] = i;
  Rng rng(seed, "epoch " + std::to_string(epoch), "data-order");
  for (size_t i = n; i > 1; --i) {
    size_t j = size_t(rng.below(i));
    std::swap(p[i - 1], p[j]);
  }
  return p;
}

DataOrder::DataOrder(size_t n, uint64_t seed) : n_(n), seed_(seed) {
  if (n == 0) throw Error(ExitCode::bad_input, "training data: no items");
}

int64_t DataOrder::epoch(int64_t step, int64_t global_batch, int64_t sample) const {
  return (step * global_batch + sample) / int64_t(n_);
}

size_t DataOrder::item(int64_t step, int64_t global_batch, int64_t sample) const {
  const int64_t pos = step * global_batch + sample;
  const int64_t e = pos / int64_t(n_);
  std::lock_guard<std::mutex> lock(mu_);
  if (e != cached_epoch_) {
    perm_ = epoch_permutation(n_, seed_, e);
    cached_epoch_ = e;
  }
  return perm_[size_t(pos % int64_t(n_))];
}

}  // namespace rass::train
