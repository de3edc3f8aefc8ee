// rass-sam: flags only; the work is rass::model::run_sam_tool (lib/rass/model/sam_tool.cpp).
#include "rass/cli/sam_cli.hpp"
#include "rass/model/sam_tool.hpp"

int main(int argc, char** argv) {
  rass::cli::SamCli cli;
  return rass::cli::run_main(cli, argc, argv, [&] { return rass::model::run_sam_tool(cli.job()); });
}
