// Flags of rass-restore, parsed into model::RestoreJob
// (lib/rass/model/restore_tool.hpp). Torch-free, so the completion generator
// and the flag tests see this CLI without LibTorch.
#pragma once
#include <string>
#include <vector>

#include "rass/cli/tool.hpp"
#include "rass/model/restore_tool.hpp"

namespace rass::cli {

class RestoreCli : public ToolCli {
 public:
  RestoreCli();
  // The job the parsed flags describe. Throws Error(usage) on bad values.
  model::RestoreJob job() const;

 private:
  model::RestoreJob j_;
  std::vector<std::string> loras_;
  std::string method_, formula_, prompt_style_, seed_ = "0", vae_tile_;
  int timestep_ = 0;
  bool tile_ = false, no_tile_ = false;
  CLI::Option *method_opt_ = nullptr, *timestep_opt_ = nullptr, *formula_opt_ = nullptr, *style_opt_ = nullptr,
               *process_size_opt_ = nullptr;
};

}  // namespace rass::cli
