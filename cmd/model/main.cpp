// rass-model: flags only; the work is rass::model::run_model_tool (lib/rass/model/model_tool.cpp).
#include "rass/cli/model_cli.hpp"
#include "rass/model/model_tool.hpp"

int main(int argc, char** argv) {
  rass::cli::ModelCli cli;
  return rass::cli::run_main(cli, argc, argv, [&] { return rass::model::run_model_tool(cli.job()); });
}
