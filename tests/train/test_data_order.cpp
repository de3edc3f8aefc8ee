#include <doctest/doctest.h>

#include <algorithm>
#include <set>

#include "rass/train/data_order.hpp"

using rass::train::DataOrder;

TEST_CASE("data order: every epoch visits every item once, epochs differ, order is a function of its arguments") {
  const size_t n = 10;
  DataOrder a(n, 7), b(n, 7), c(n, 8);
  // 3 epochs of 10 items with a global batch of 4: positions 0..29.
  std::vector<size_t> seen;
  for (int64_t step = 0; step < 8; ++step)
    for (int64_t s = 0; s < 4; ++s)
      if (step * 4 + s < 30) seen.push_back(a.item(step, 4, s));
  for (int e = 0; e < 3; ++e) {
    std::set<size_t> ep(seen.begin() + e * 10, seen.begin() + (e + 1) * 10);
    CHECK(ep.size() == n);
  }
  CHECK(!std::equal(seen.begin(), seen.begin() + 10, seen.begin() + 10));
  // Another object with the same seed, asked in another order (a resumed run, another process).
  for (int64_t step = 7; step >= 0; --step)
    for (int64_t s = 3; s >= 0; --s)
      if (step * 4 + s < 30) CHECK(b.item(step, 4, s) == seen[size_t(step * 4 + s)]);
  // Two processes with batch 2 each = the global batch of 4: sample index is global.
  CHECK(a.item(3, 4, 2) == b.item(3, 4, 2));
  // Another seed gives another order.
  bool differs = false;
  for (int64_t s = 0; s < 4; ++s) differs |= c.item(0, 4, s) != a.item(0, 4, s);
  CHECK(differs);
  CHECK(a.epoch(7, 4, 1) == 2);
  CHECK_THROWS(DataOrder(0, 1));
}
