#include "rass/model/deep_iqa_register.hpp"

#include "rass/model/iqa_clipiqa.hpp"
#include "rass/model/iqa_dists.hpp"
#include "rass/model/iqa_lpips.hpp"
#include "rass/model/iqa_musiq.hpp"
#include "rass/model/iqa_maniqa.hpp"

namespace rass::model {

void register_deep_iqa_metrics() {
  register_lpips_metric();
  register_dists_metric();
  register_musiq_metric();
  register_clipiqa_metric();
  register_maniqa_metric();
}

}  // namespace rass::model
