// Flags of rass-caption-map (and its build-table subcommand).
#pragma once
#include "rass/cli/tool.hpp"
#include "rass/text/caption_map_tool.hpp"

namespace rass::cli {

class CaptionMapCli : public ToolCli {
 public:
  CaptionMapCli();
  text::CaptionMapJob job() const;

 private:
  text::CaptionMapJob j_;
  std::string threshold_ = "0.5";
  CLI::App* build_table_ = nullptr;
};

}  // namespace rass::cli
