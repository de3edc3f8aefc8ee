// Flags of rass-t5, parsed into model::T5Job (lib/rass/model/t5_tool.hpp). Torch-free.
#pragma once
#include <string>

#include "rass/cli/tool.hpp"
#include "rass/model/t5_tool.hpp"

namespace rass::cli {

class T5Cli : public ToolCli {
 public:
  T5Cli();
  model::T5Job job() const;

 private:
  model::T5Job j_;
  std::string text_;
};

}  // namespace rass::cli
