// Flags of rass-train: one subcommand per training stage (the same flags for
// each: the stage's own settings go through --config / --set) and `plot`.
// The work is in lib/rass/train/train_tool.cpp (LibTorch); this file is
// torch-free so that the completion generator and the flag tests see the CLI.
#pragma once
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "rass/cli/tool.hpp"
#include "rass/train/train_tool.hpp"

namespace rass::cli {

// The stages' names and one-line summaries, in --help order. Must match
// rass::train::all_stages() (lib/rass/train/stage_list.cpp; tests/train checks).
const std::vector<std::pair<std::string, std::string>>& train_stage_names();

class TrainCli : public ToolCli {
 public:
  TrainCli();
  // The parsed job; Error(usage) for flag values that do not go together.
  train::TrainJob job() const;

 private:
  struct StageFlags {
    CLI::App* app = nullptr;
    std::map<std::string, CLI::Option*> opts;  // config key ("loop.steps") -> its flag
  };
  train::TrainJob j_;
  std::string out_dir_, resume_from_, device_, dtype_, seed_;
  int64_t steps_ = 0, batch_ = 0, checkpoint_every_ = 0, log_every_ = 0, stop_after_ = 0;
  double lr_ = 0;
  int threads_ = 0;
  bool resume_ = false;
  std::string terms_;
  std::vector<StageFlags> stages_;
  CLI::App* plot_ = nullptr;
};

}  // namespace rass::cli
