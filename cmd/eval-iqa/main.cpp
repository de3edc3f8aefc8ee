// rass-eval-iqa: flags only; the work is rass::metrics::run_eval_iqa (lib/rass/metrics/eval_iqa_tool.cpp).
// Built with LibTorch, it registers the deep metrics (lib/rass/model/iqa_*.cpp) first.
#include "rass/cli/eval_iqa_cli.hpp"
#ifdef RASS_EVAL_IQA_DEEP
#include "rass/model/deep_iqa_register.hpp"
#endif

int main(int argc, char** argv) {
#ifdef RASS_EVAL_IQA_DEEP
  rass::model::register_deep_iqa_metrics();
#endif
  rass::cli::EvalIqaCli cli;
  return rass::cli::run_main(cli, argc, argv, [&] { return rass::metrics::run_eval_iqa(cli.job()); });
}
