// Registers the deep image-quality metrics (model/iqa_*.cpp, LibTorch) with
// rass-eval-iqa's torch-free registry (metrics/deep_iqa.hpp). Torch-free
// header: tools that link the network layer call it from main.
#pragma once

namespace rass::model {

// Calls each metric family's own register_*() (defined next to its network).
void register_deep_iqa_metrics();

}  // namespace rass::model
