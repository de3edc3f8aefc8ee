#include "rass/batch/one_input.hpp"

#include "rass/core/error.hpp"

namespace rass::batch {

void refuse_batch_flags_for_one(bool resume, const Shard& shard, const std::string& one, const std::string& hint) {
  if (resume) throw_usage("--resume skips a batch's finished outputs; " + one + " is always made" + hint);
  if (shard.given) throw_usage("--shard splits a batch; " + one + " is not split" + hint);
}

}  // namespace rass::batch
