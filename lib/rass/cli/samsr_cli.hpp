// Flags of rass-samsr, parsed into model::SamsrJob (lib/rass/model/samsr_tool.hpp). Torch-free.
#pragma once
#include <string>

#include "rass/cli/tool.hpp"
#include "rass/model/samsr_tool.hpp"

namespace rass::cli {

class SamsrCli : public ToolCli {
 public:
  SamsrCli();
  model::SamsrJob job() const;

 private:
  model::SamsrJob j_;
  std::string seed_ = "0";
};

}  // namespace rass::cli
