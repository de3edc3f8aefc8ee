// rass-samsr as a library call: x4 super-resolution with SAMSR (seed 002),
// SinSR or ResShift on one image (file or `-`) or a batch (files,
// directories, manifests -> -O DIR) through the shared batch layer. The CLI
// (cli/samsr_cli.cpp) only parses flags into a SamsrJob. Torch-free.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "rass/core/shard.hpp"

namespace rass::model {

struct SamsrJob {
  std::string model;           // samsr.json folder
  std::string sam;             // SAM folder for SAMSR's masks ("" = the model's sam/)
  std::string noise = "auto";  // auto | sam | gaussian
  int steps = 0;               // 0 = the method's (1 for SAMSR/SinSR)
  uint64_t seed = 0;
  int chop_size = 512, chop_stride = 0;  // stride 0: chop_size * 7 / 8 (448 for 512, 224 for 256)
  std::string device = "cpu", dtype = "fp32";
  int threads = 0;
  std::vector<std::string> inputs;
  std::string manifest;
  std::string output, output_dir;  // -o FILE | -, -O DIR
  bool json = false, quiet = false, resume = false;
  int jobs = 1;
  Shard shard;
};

int run_samsr_tool(const SamsrJob& job);

}  // namespace rass::model
