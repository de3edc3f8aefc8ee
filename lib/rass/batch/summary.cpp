#include "rass/batch/summary.hpp"

#include <cstdio>

namespace rass::batch {

void print_batch_summary(const char* prog, const char* verb, const Tally& tally, size_t skipped, const Shard& shard,
                         size_t mine, size_t all, bool quiet) {
  if (quiet) return;
  std::fprintf(stderr, "%s: %zu %s, %zu already done, %zu failed (shard %s, %zu of %zu inputs)\n", prog,
               tally.ok - skipped, verb, skipped, tally.bad + tally.failed, shard.str().c_str(), mine, all);
}

}  // namespace rass::batch
