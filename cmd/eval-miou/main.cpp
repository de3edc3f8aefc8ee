// rass-eval-miou: flags only; the work is rass::metrics::run_eval_miou (lib/rass/metrics/eval_miou_tool.cpp).
#include "rass/cli/eval_miou_cli.hpp"

int main(int argc, char** argv) {
  rass::cli::EvalMiouCli cli;
  return rass::cli::run_main(cli, argc, argv, [&] { return rass::metrics::run_eval_miou(cli.job()); });
}
