// rass-eval-iqa: flags only; the work is rass::metrics::run_eval_iqa (lib/rass/metrics/eval_iqa_tool.cpp).
#include "rass/cli/eval_iqa_cli.hpp"

int main(int argc, char** argv) {
  rass::cli::EvalIqaCli cli;
  return rass::cli::run_main(cli, argc, argv, [&] { return rass::metrics::run_eval_iqa(cli.job()); });
}
