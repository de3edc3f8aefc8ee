// Flags of rass-model (info / run / convert). The work is in
// lib/rass/model/model_tool.cpp (LibTorch); this file is torch-free so that
// the completion generator and the flag tests see the CLI without LibTorch.
#pragma once
#include <string>
#include <vector>

#include "rass/cli/tool.hpp"

namespace rass::cli {

struct ModelArgs {
  std::string command;  // info, run, convert
  std::string path;     // diffusers folder or .safetensors file
  // run
  std::string component;  // unet, vae-encode, vae-decode, text-encoder, tokenize
  std::string sample, context, input_ids, prompt, output;
  double timestep = 999;
  std::vector<std::string> loras;  // FILE[:SCALE]
  std::string device = "cpu", dtype = "fp32";
  int threads = 0;
  uint64_t seed = 0;
  bool sample_latent = false;  // vae-encode: latent_dist.sample() instead of the mean
  // convert
  std::string to_dtype;
  bool drop_ema = false, merge = false, split = false;
};

class ModelCli : public ToolCli {
 public:
  ModelCli();
  ModelArgs args() const;

 private:
  ModelArgs a_;
  CLI::App *info_ = nullptr, *run_ = nullptr, *convert_ = nullptr;
};

}  // namespace rass::cli
