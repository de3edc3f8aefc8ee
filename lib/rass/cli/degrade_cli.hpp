// Flags of rass-degrade. Pipeline settings are kept as text until the preset
// is known, so a flag overrides the preset's value only when given.
#pragma once
#include <map>
#include <string>
#include <vector>

#include "rass/cli/tool.hpp"
#include "rass/degrade/degrade_tool.hpp"

namespace rass::cli {

class DegradeCli : public ToolCli {
 public:
  DegradeCli();
  // The job the parsed flags describe. Throws Error(usage) on bad values.
  degrade::DegradeJob job() const;

 private:
  std::vector<std::string> inputs_;
  std::string output_, manifest_, preset_ = "rass", key_, format_, record_, replay_, manifest_out_, stages_;
  std::string lq_size_, upsample_mode_, kernel_sizes_, resize_modes_, frost_dir_;
  int png_level_ = 1, out_quality_ = 95;
  int severity_ = 3, variants_ = 1, scale_ = 0;
  std::string seed_ = "0";  // parsed strictly in job(): CLI11 would wrap -1 and saturate 2^64
  bool resume_ = false, usm_ = false, drop_alpha_ = false, accept_16bit_ = false, print_config_ = false;
  std::map<std::string, std::string> model_;  // pipeline flag name -> value given
};

}  // namespace rass::cli
