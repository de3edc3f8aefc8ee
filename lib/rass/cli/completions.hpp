// Shell completions generated from a tool's CLI definition (the single source
// of truth). completions/ holds the generated files; a test checks they are
// current, and `make docs` rewrites them.
#pragma once
#include <string>

#include "rass/cli/tool.hpp"

namespace rass::cli {

std::string bash_completion(ToolCli& tool);
std::string zsh_completion(ToolCli& tool);
std::string fish_completion(ToolCli& tool);
// Paths relative to completions/: bash/rass-X, zsh/_rass-X, fish/rass-X.fish.
std::string bash_completion_path(const ToolCli& tool);
std::string zsh_completion_path(const ToolCli& tool);
std::string fish_completion_path(const ToolCli& tool);

// Completions of the `rass` dispatcher: its first word is a tool name.
std::string dispatcher_bash_completion();
std::string dispatcher_zsh_completion();
std::string dispatcher_fish_completion();

// Every flag spelling (short and long) a tool accepts, e.g. {"-o", "--output", ...}.
std::vector<std::string> tool_flags(ToolCli& tool);

}  // namespace rass::cli
