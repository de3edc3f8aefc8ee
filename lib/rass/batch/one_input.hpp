// A batch tool given one input (-o FILE): the batch-only flags that would do
// nothing there are refused rather than silently ignored.
#pragma once
#include <string>

#include "rass/core/shard.hpp"

namespace rass::batch {

// --resume: Error(usage) "--resume skips a batch's finished outputs; one
// image (-o FILE) is always made" + `hint`. `one`: "one image (-o FILE)".
// --shard on the command line likewise (`shard.given`); the shard Slurm's
// array variables give is not refused: a job script sets them for every
// command it runs.
void refuse_batch_flags_for_one(bool resume, const Shard& shard, const std::string& one, const std::string& hint = "");

}  // namespace rass::batch
