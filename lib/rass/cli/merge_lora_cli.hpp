// Flags of rass-merge-lora (merge / list / extract / init-seg /
// expand-channels), parsed into model::MergeLoraJob
// (lib/rass/model/merge_lora_tool.hpp). Torch-free: the completion generator
// and the flag tests see the CLI without LibTorch.
#pragma once
#include <string>
#include <vector>

#include "rass/cli/tool.hpp"
#include "rass/model/merge_lora_tool.hpp"

namespace rass::cli {

class MergeLoraCli : public ToolCli {
 public:
  MergeLoraCli();
  // The parsed job (after a successful parse); Error(usage) for flag values
  // that do not go together or do not parse.
  model::MergeLoraJob job() const;

 private:
  model::MergeLoraJob a_;
  std::vector<std::string> loras_;
  CLI::App *merge_ = nullptr, *list_ = nullptr, *extract_ = nullptr, *init_seg_ = nullptr, *expand_ = nullptr;
  CLI::Option *timestep_ = nullptr, *classes_ = nullptr;
};

}  // namespace rass::cli
