// Every stage rass-train offers, in the order of its --help. The CLI's
// torch-free list of subcommands (cli/train_cli.hpp train_stage_names) must
// name the same stages; tests/train checks that they agree.
#pragma once
#include <vector>

#include "rass/train/stage.hpp"

namespace rass::train {

const std::vector<StageInfo>& all_stages();
// The stage named `name`, or nullptr.
const StageInfo* find_stage(const std::string& name);

}  // namespace rass::train
