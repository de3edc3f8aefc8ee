// Flags of rass-dreamclear, parsed into model::DreamClearJob (lib/rass/model/dreamclear_tool.hpp). Torch-free.
#pragma once
#include <string>

#include "rass/cli/tool.hpp"
#include "rass/model/dreamclear_tool.hpp"

namespace rass::cli {

class DreamClearCli : public ToolCli {
 public:
  DreamClearCli();
  model::DreamClearJob job() const;

 private:
  model::DreamClearJob j_;
  std::string seed_ = "0";
  std::string vae_tile_;  // --vae-tile ENC,DEC ("": the whole image)
};

}  // namespace rass::cli
