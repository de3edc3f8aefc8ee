// The export of the pretraining stages: a copy of the diffusers folder the
// run started from in which one component (vae/ or unet/) holds the trained
// weights, in diffusers names and float32, so rass-model, rass-restore and a
// later stage load it as any SD folder. The other components are hard-linked
// (copied across filesystems). Written beside `dst` and renamed over it at
// the end: an older export is replaced only by a complete one.
#pragma once
#include <string>

#include <torch/nn/module.h>

namespace rass::train {

void export_component_folder(const std::string& sd_dir, const std::string& dst, const std::string& component,
                             const torch::nn::Module& module, const std::string& writer);

}  // namespace rass::train
