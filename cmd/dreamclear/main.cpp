// rass-dreamclear: flags only; the work is rass::model::run_dreamclear_tool (lib/rass/model/dreamclear_tool.cpp).
#include "rass/cli/dreamclear_cli.hpp"
#include "rass/model/dreamclear_tool.hpp"

int main(int argc, char** argv) {
  rass::cli::DreamClearCli cli;
  return rass::cli::run_main(cli, argc, argv, [&] { return rass::model::run_dreamclear_tool(cli.job()); });
}
