// DISTS as a rass-eval-iqa metric (`dists`) and as a loader for training code
// (the network is in nn/iqa_dists.hpp).
#pragma once
#include <string>

#include <torch/types.h>

#include "rass/nn/iqa_dists.hpp"

namespace rass::model {

// Registers dists (pyiqa's convention: full resolution) and dists@official
// (the DISTS repository's script: resized to 256 on the smaller side), both
// reading dists.safetensors.
void register_dists_metric();

// DISTS from a file written by scripts/convert_iqa_dists.py, on `device`,
// frozen and in evaluation mode; the widths are read from the file.
nn::Dists load_dists(const std::string& path, torch::Device device);

}  // namespace rass::model
