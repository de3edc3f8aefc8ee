// rass-train as a library call: the CLI (cli/train_cli.cpp) parses flags into
// a TrainJob; this layer merges the configuration, joins the data-parallel
// processes, builds the stage, runs the loop and exports the model. Torch-free
// header (the CLI layer includes it).
#pragma once
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "rass/train/plot.hpp"

namespace rass::train {

struct TrainJob {
  std::string command;            // a stage's name, or "plot"
  std::string config_file;        // --config
  std::vector<std::string> sets;  // --set KEY=VALUE
  // The dedicated flags given (--steps 10 -> {"loop": {"steps": 10}}).
  nlohmann::ordered_json flags = nlohmann::ordered_json::object();
  bool print_config = false;
  bool json = false, quiet = false;
  PlotJob plot;
};

int run_train_tool(const TrainJob& job);

}  // namespace rass::train
