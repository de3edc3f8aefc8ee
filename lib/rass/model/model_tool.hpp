// rass-model as a library call (info, run, convert); see cli/model_cli.hpp.
#pragma once
#include "rass/cli/model_cli.hpp"

namespace rass::model {

// Returns the exit code; errors throw rass::Error.
int run_model_tool(const cli::ModelArgs& args, bool json, bool quiet);

}  // namespace rass::model
