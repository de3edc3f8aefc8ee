// rass-train: flags only; the work is rass::train::run_train_tool (lib/rass/train/train_tool.cpp).
#include "rass/cli/train_cli.hpp"
#include "rass/train/train_tool.hpp"

int main(int argc, char** argv) {
  rass::cli::TrainCli cli;
  return rass::cli::run_main(cli, argc, argv, [&] { return rass::train::run_train_tool(cli.job()); });
}
