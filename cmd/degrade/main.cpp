// rass-degrade: flags only; the work is rass::degrade::run_degrade (lib/rass/degrade/degrade_tool.cpp).
#include "rass/cli/degrade_cli.hpp"

int main(int argc, char** argv) {
  rass::cli::DegradeCli cli;
  return rass::cli::run_main(cli, argc, argv, [&] { return rass::degrade::run_degrade(cli.job()); });
}
