// Flags of rass-eval-miou.
#pragma once
#include <string>
#include <vector>

#include "rass/cli/tool.hpp"
#include "rass/metrics/eval_miou_tool.hpp"

namespace rass::cli {

class EvalMiouCli : public ToolCli {
 public:
  EvalMiouCli();
  // The job the parsed flags describe.
  metrics::MiouJob job() const;

 private:
  std::vector<std::string> inputs_;
  bool match_stem_ = false;
  std::string manifest_, pred_suffix_, gt_suffix_, label_map_, pred_label_map_, classes_, convention_ = "mmseg";
  std::string csv_, confusion_, per_image_;
  int num_classes_ = 0;
  std::string ignore_index_text_ = "255";
  bool reduce_zero_label_ = false;
};

}  // namespace rass::cli
