// rass-model sample: draws -n images from a prompt with the DDIM sampler
// (model/sample.hpp) and writes them as PNG (-o FILE, or -O DIR with one file
// per image), optionally tiled into one grid image (--grid COLS).
#pragma once
#include "rass/model/model_tool.hpp"

namespace rass::model {

int run_sample_command(const ModelJob& job);

}  // namespace rass::model
