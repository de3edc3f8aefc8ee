// rass-t5: flags only; the work is rass::model::run_t5_tool (lib/rass/model/t5_tool.cpp).
#include "rass/cli/t5_cli.hpp"
#include "rass/model/t5_tool.hpp"

int main(int argc, char** argv) {
  rass::cli::T5Cli cli;
  return rass::cli::run_main(cli, argc, argv, [&] { return rass::model::run_t5_tool(cli.job()); });
}
