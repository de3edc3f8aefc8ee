// The last line of a network tool's batch run on stderr:
// "<prog>: N <verb>, K already done, F failed (shard i/n, M of A inputs)".
// One format for rass-restore, rass-segment, rass-sam, rass-samsr and
// rass-dreamclear (scripts and tests read it). Torch-free.
#pragma once
#include <cstddef>

#include "rass/batch/run.hpp"
#include "rass/core/shard.hpp"

namespace rass::batch {

// `skipped`: the items --resume kept (counted in tally.ok); nothing when `quiet`.
void print_batch_summary(const char* prog, const char* verb, const Tally& tally, size_t skipped, const Shard& shard,
                         size_t mine, size_t all, bool quiet);

}  // namespace rass::batch
