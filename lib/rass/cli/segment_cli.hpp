// Flags of rass-segment, parsed into model::SegmentJob
// (lib/rass/model/segment_tool.hpp). Torch-free.
#pragma once
#include <string>

#include "rass/cli/tool.hpp"
#include "rass/model/segment_tool.hpp"

namespace rass::cli {

class SegmentCli : public ToolCli {
 public:
  SegmentCli();
  model::SegmentJob job() const;

 private:
  model::SegmentJob j_;
  std::string prompt_style_, seed_ = "0";
  CLI::Option* style_opt_ = nullptr;
};

}  // namespace rass::cli
