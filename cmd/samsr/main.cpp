// rass-samsr: flags only; the work is rass::model::run_samsr_tool (lib/rass/model/samsr_tool.cpp).
#include "rass/cli/samsr_cli.hpp"
#include "rass/model/samsr_tool.hpp"

int main(int argc, char** argv) {
  rass::cli::SamsrCli cli;
  return rass::cli::run_main(cli, argc, argv, [&] { return rass::model::run_samsr_tool(cli.job()); });
}
