// `--shard i/n`: this process handles items whose position in the sorted item
// list is congruent to i mod n (0 <= i < n). Without the flag, Slurm job-array
// variables give the default, so `sbatch --array=0-9` just works.
#pragma once
#include <string>

namespace rass {

struct Shard {
  int index = 0;
  int count = 1;
  // Set by parse_shard (--shard on the command line), not by shard_from_env:
  // a tool given one input refuses the flag but not Slurm's variables, which
  // an array job's script sets for every command it runs.
  bool given = false;
  bool contains(size_t position) const { return static_cast<int>(position % count) == index; }
  std::string str() const { return std::to_string(index) + "/" + std::to_string(count); }
};

// Parses "i/n"; throws Error(usage) on anything else.
Shard parse_shard(const std::string& text);
// From SLURM_ARRAY_TASK_ID, SLURM_ARRAY_TASK_COUNT, SLURM_ARRAY_TASK_MIN
// (arrays may start at 1) and SLURM_ARRAY_TASK_STEP (--array=0-15:4); {0,1}
// when none is set; Error(usage) when only one of ID and COUNT is.
Shard shard_from_env();

}  // namespace rass
