#include "rass/train/stage_list.hpp"

#include "rass/train/ras_stage.hpp"
#include "rass/train/resshift_stage.hpp"
#include "rass/train/sam_decoder_stage.hpp"
#include "rass/train/sam_enhancer_stage.hpp"
#include "rass/train/scr_stage.hpp"
#include "rass/train/selftest_stage.hpp"
#include "rass/train/sinsr_stage.hpp"
#include "rass/train/unet_stage.hpp"
#include "rass/train/vae_stage.hpp"

namespace rass::train {

const std::vector<StageInfo>& all_stages() {
  static const std::vector<StageInfo> stages = {scr_stage_info(), ras_stage_info(), sam_enhancer_stage_info(), sam_decoder_stage_info(), sinsr_stage_info(), resshift_stage_info(),
                                                 selftest_stage_info(),
                                                 vae_stage_info(), unet_stage_info()};
  return stages;
}

const StageInfo* find_stage(const std::string& name) {
  for (const auto& s : all_stages())
    if (s.name == name) return &s;
  return nullptr;
}

}  // namespace rass::train
