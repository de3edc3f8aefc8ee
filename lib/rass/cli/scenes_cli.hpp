// Flags of rass-scenes.
#pragma once
#include <string>

#include "rass/cli/tool.hpp"
#include "rass/scenes/scenes_tool.hpp"

namespace rass::cli {

class ScenesCli : public ToolCli {
 public:
  ScenesCli();
  // The job the parsed flags describe. Throws Error(usage) on bad values.
  scenes::ScenesJob job() const;

 private:
  std::string output_, kind_ = "mixed", seed_ = "0";
  long long count_ = 0, start_ = 0;
  int size_ = 256, width_ = 0, height_ = 0, png_level_ = 6;
  bool resume_ = false, list_classes_ = false;
};

}  // namespace rass::cli
