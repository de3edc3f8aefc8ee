// Flags of rass-eval-iqa.
#pragma once
#include "rass/cli/tool.hpp"
#include "rass/metrics/eval_iqa_tool.hpp"

namespace rass::cli {

class EvalIqaCli : public ToolCli {
 public:
  EvalIqaCli();
  metrics::IqaJob job() const;

 private:
  std::vector<std::string> inputs_;
  std::string metrics_ = "psnr,ssim", manifest_, niqe_params_, csv_, weights_, device_ = "cpu";
  int crop_border_ = 0, threads_ = 0, batch_ = 1;
  std::string seed_ = "0";  // parsed in job(): CLI11 saturates out-of-range and wraps negative values
  bool y_channel_ = false, no_table_ = false, match_stem_ = false;
};

}  // namespace rass::cli
