// LPIPS as a rass-eval-iqa metric (`lpips`: AlexNet, `lpips-vgg`: VGG16) and
// as a loader for training code (the network is in nn/iqa_lpips.hpp).
#pragma once
#include <string>

#include <torch/types.h>

#include "rass/nn/iqa_lpips.hpp"

namespace rass::model {

// Registers lpips (lpips_alex.safetensors) and lpips-vgg (lpips_vgg.safetensors).
void register_lpips_metric();

// LPIPS from a file written by scripts/convert_iqa_lpips.py, on `device`,
// frozen and in evaluation mode. The trunk (AlexNet or VGG16) and its widths
// are read from the file; with `expect`, another trunk is refused
// (Error(bad_input) naming the file).
nn::Lpips load_lpips(const std::string& path, torch::Device device, const nn::LpipsTrunk* expect = nullptr);

}  // namespace rass::model
