// The registry of every tool's CLI definition.
#include "rass/cli/caption_map_cli.hpp"
#include "rass/cli/degrade_cli.hpp"
#include "rass/cli/dreamclear_cli.hpp"
#include "rass/cli/eval_iqa_cli.hpp"
#include "rass/cli/model_cli.hpp"
#include "rass/cli/eval_miou_cli.hpp"
#include "rass/cli/restore_cli.hpp"
#include "rass/cli/merge_lora_cli.hpp"
#include "rass/cli/sam_cli.hpp"
#include "rass/cli/samsr_cli.hpp"
#include "rass/cli/segment_cli.hpp"
#include "rass/cli/t5_cli.hpp"
#include "rass/cli/scenes_cli.hpp"
#include "rass/cli/tool.hpp"
#include "rass/cli/train_cli.hpp"

namespace rass::cli {

std::vector<std::unique_ptr<ToolCli>> all_tool_clis() {
  std::vector<std::unique_ptr<ToolCli>> tools;
  tools.push_back(std::make_unique<DegradeCli>());
  tools.push_back(std::make_unique<EvalIqaCli>());
  tools.push_back(std::make_unique<EvalMiouCli>());
  tools.push_back(std::make_unique<ModelCli>());
  tools.push_back(std::make_unique<RestoreCli>());
  tools.push_back(std::make_unique<CaptionMapCli>());
  tools.push_back(std::make_unique<MergeLoraCli>());
  tools.push_back(std::make_unique<SegmentCli>());
  tools.push_back(std::make_unique<SamCli>());
  tools.push_back(std::make_unique<SamsrCli>());
  tools.push_back(std::make_unique<DreamClearCli>());
  tools.push_back(std::make_unique<T5Cli>());
  tools.push_back(std::make_unique<TrainCli>());
  tools.push_back(std::make_unique<ScenesCli>());
  return tools;
}

}  // namespace rass::cli
