// The reports of rass-eval-miou (declared in eval_miou_tool.hpp with the job and
// result types); shared pieces for the per-image lines.
#pragma once
#include <string>

namespace rass::metrics {

// Why a summary value (mIoU, aAcc, ...) is NaN, for the JSON "reasons".
std::string summary_reason(const std::string& key);

}  // namespace rass::metrics
