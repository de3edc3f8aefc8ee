// rass-restore: flags only; the work is rass::model::run_restore_tool (lib/rass/model/restore_tool.cpp).
#include "rass/cli/restore_cli.hpp"
#include "rass/model/restore_tool.hpp"

int main(int argc, char** argv) {
  rass::cli::RestoreCli cli;
  return rass::cli::run_main(cli, argc, argv, [&] { return rass::model::run_restore_tool(cli.job()); });
}
