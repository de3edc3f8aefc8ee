// rass-merge-lora: flags only; the work is rass::model::run_merge_lora_tool (lib/rass/model/merge_lora_tool.cpp).
#include "rass/cli/merge_lora_cli.hpp"
#include "rass/model/merge_lora_tool.hpp"

int main(int argc, char** argv) {
  rass::cli::MergeLoraCli cli;
  return rass::cli::run_main(cli, argc, argv, [&] { return rass::model::run_merge_lora_tool(cli.job()); });
}
