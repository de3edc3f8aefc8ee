// Flags of rass-sam, parsed into model::SamJob (lib/rass/model/sam_tool.hpp). Torch-free.
#pragma once
#include <string>

#include "rass/cli/tool.hpp"
#include "rass/model/sam_tool.hpp"

namespace rass::cli {

class SamCli : public ToolCli {
 public:
  SamCli();
  model::SamJob job() const;

 private:
  model::SamJob j_;
  std::string seed_ = "0";
  int fill_ = 0;
  CLI::Option* fill_opt_ = nullptr;
};

}  // namespace rass::cli
