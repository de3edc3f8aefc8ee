// rass-merge-lora as a library call: LoRA surgery on diffusers weights
// (merge, list, extract, init-seg, expand-channels). The CLI
// (cli/merge_lora_cli.cpp) parses flags into a MergeLoraJob; this header is
// torch-free so the CLI layer and the completion generator build without LibTorch.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "rass/model/model_tool.hpp"  // LoraSpec

namespace rass::model {

struct MergeLoraJob {
  enum class Command { merge, list, extract, init_seg, expand_channels };
  Command command = Command::merge;
  // The base weights: a diffusers folder (+ component), a component folder,
  // or a .safetensors file (+ config, else the config.json beside it).
  std::string model, component = "unet", config;
  std::vector<LoraSpec> loras;      // merge, init-seg (the SCR LoRA)
  bool no_scr = false;              // init-seg without an SCR LoRA (FT-none / DT of seed 000's ablation)
  std::string lora_file;            // list
  std::string output, output_dir;   // -o FILE, -O DIR
  std::string dtype;                // "" = each tensor's input dtype; fp32, fp16, bf16
  // extract
  std::string tuned;
  int64_t rank = 4;                 // extract, init-seg
  std::vector<std::string> targets;
  bool full_weights = false;
  // init-seg
  double alpha = 8;                 // PEFT's default lora_alpha, which RASS leaves unset
  uint64_t seed = 0;
  bool has_timestep = false;
  double timestep = 1;
  std::string formula, prompt_style;  // recorded in rass.json when given
  // The segmentation head of the new folder: released, tiny or a head-config
  // JSON file; the classes: ade20k, cityscapes, voc or a file of names.
  std::string head = "released", classes = "ade20k";
  // expand-channels
  int64_t factor = 0;
  std::string device = "cpu";
  int threads = 0;  // 0 = all cores
  bool json = false, quiet = false;
};

// Returns the exit code; errors throw rass::Error with the code of DESIGN.md.
int run_merge_lora_tool(const MergeLoraJob& job);

}  // namespace rass::model
